#!/usr/bin/env bash
# One prepared GPU check (issue 16): every GPU path the host can run, parity, times -> OUTDIR/gpu_check.json.
# Needs the default DDPM bundle at bundles/ddpm (gen train ddpm && gen export runs/ddpm --out bundles/ddpm --fp16)
# and a CUDA build of torch with gen installed (pip install -e '.[test]'). Under 8 minutes on an H100/H200;
# what the budget leaves out is recorded as skipped. The SD base and bundle go to build/gpu-check (GBs), not OUTDIR.
set -euo pipefail
out="${1:?usage: benchmarks/gpu_check.sh OUTDIR}"
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] && python=.venv/bin/python
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > /dev/null 2>&1 || echo "nvidia-smi: no GPU visible" >&2
timeout 470 "$python" benchmarks/gpu_check.py "$out" --budget-s 400
