#!/usr/bin/env bash
# INT8 on the digits models: does `gen export --int8` pay for the default DDPM and DCGAN, and what does
# it cost in fd_digits? Every figure is one plain gen command; outputs land in benchmarks/results/.
#   bash benchmarks/int8_digits.sh [runs/ddpm] [runs/gan]     # the README's default runs (gen train ddpm|gan)
# Run it alone on the machine: it times things.
set -euo pipefail
cd "$(dirname "$0")/.."
ddpm=${1:-runs/ddpm}; gan=${2:-runs/gan}; out=benchmarks/results; b=build/int8-digits
gen=${GEN:-.venv/bin/gen}; py=${PYTHON:-.venv/bin/python}
mkdir -p "$b"
for run in "$ddpm" "$gan"; do
  name=$(basename "$run")
  # with the defaults: int8 is kept only where it is >= 1.1x fp32 per call; the refusal is a result too
  if "$gen" export "$run" --out "$b/$name" --int8 --force > "$b/$name-export.log" 2>&1; then echo "$name: int8 kept"
  else echo "$name: int8 refused: $(tail -1 "$b/$name-export.log")"; fi
  # forced, to measure what int8 of every conv and linear layer would give end to end and in quality
  "$gen" export "$run" --out "$b/$name-forced" --int8 --int8-groups conv,convtranspose,linear --int8-min-speedup 0 --force > "$b/$name-forced-export.log" 2>&1
  tail -4 "$b/$name-forced-export.log"
done
"$gen" bench "$b/$(basename "$ddpm")-forced" --backends ort --precisions fp32,int8 --steps 50 --batch 16 --repeats 10 \
  --json "$out/int8_bench_ddpm.json"
"$gen" bench "$b/$(basename "$gan")-forced" --backends ort --precisions fp32,int8 --batch 64 --repeats 20 \
  --json "$out/int8_bench_gan.json"
for name in "$(basename "$ddpm")" "$(basename "$gan")"; do
  for p in fp32 int8; do
    "$gen" eval "$b/$name-forced" --precision "$p" --json "$out/int8_eval_${name}_$p.json" > /dev/null
  done
done
"$py" benchmarks/ort_profile.py "$b/$(basename "$ddpm")-forced" --component denoiser --batch 16 --out "$out/int8_profile_ddpm.json"
"$py" benchmarks/ort_profile.py "$b/$(basename "$gan")-forced" --component generator --batch 64 --out "$out/int8_profile_gan.json"
