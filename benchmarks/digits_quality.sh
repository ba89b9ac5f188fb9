#!/usr/bin/env bash
# Trains every trainkit family on the bundled digits with its defaults (seed 0), scores each with
# `gen eval --n 1000`, and collects the figures into benchmarks/results/digits_quality.json.
# Usage: bash benchmarks/digits_quality.sh [RUNS_DIR]   (about 15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
GEN=${GEN:-.venv/bin/gen}
RUNS=${1:-runs/quality}
mkdir -p "$RUNS" benchmarks/results
: > "$RUNS/train_seconds.txt"
declare -A CMDS=(
  [ddpm]="train ddpm --data digits"
  [gan-bce]="train gan --data digits --loss bce"
  [gan-conditional]="train gan --data digits --conditional"
  [vae]="train vae --data digits"
)
for name in ddpm gan-bce gan-conditional vae; do
  start=$(date +%s)
  $GEN ${CMDS[$name]} --out "$RUNS/$name" --force --quiet
  echo "$name $(( $(date +%s) - start ))" >> "$RUNS/train_seconds.txt"
  $GEN eval "$RUNS/$name" --n 1000 > /dev/null
done
python3 - "$RUNS" <<'PY'
import json, platform, sys, pathlib, datetime
runs = pathlib.Path(sys.argv[1])
secs = dict(line.split() for line in (runs / "train_seconds.txt").read_text().splitlines())
out = {"command": "bash benchmarks/digits_quality.sh", "date": datetime.date.today().isoformat(),
       "machine": f"{platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}".strip(),
       "runs": {}}
for name in ("ddpm", "gan-bce", "gan-conditional", "vae"):
    ev = json.loads((runs / name / "eval.json").read_text())
    out["runs"][name] = {"train_seconds": int(secs[name]), **ev["metrics"], "reference": ev["reference"]}
pathlib.Path("benchmarks/results/digits_quality.json").write_text(json.dumps(out, indent=2) + "\n")
print(json.dumps(out, indent=2))
PY
