#!/usr/bin/env bash
# The per-host plan on the digits models: is `gen tune`'s choice ever slower than the best single
# backend x precision measured in the same run (bf16 and int8-bf16 where the CPU has bf16, skipped with the
# reason elsewhere), and what does it cost in fd_digits? One plain gen
# command per figure; outputs in benchmarks/results/. Run it alone on the machine (`uptime` first).
#   bash benchmarks/plan_digits.sh [runs/ddpm] [runs/gan]     # default: short runs trained here
#   TAG=_bf16host bash benchmarks/plan_digits.sh ...          # results as plan_bench_ddpm_bf16host.json etc.
set -euo pipefail
cd "$(dirname "$0")/.."
gen=${GEN:-.venv/bin/gen}; out=benchmarks/results; b=build/plan-digits; tag=${TAG:-}
mkdir -p "$b" "$out"
ddpm=${1:-$b/run-ddpm}; gan=${2:-$b/run-gan}
[ -f "$ddpm/weights.safetensors" ] || "$gen" train ddpm --data digits --out "$ddpm" --steps 2000 --quiet --force
[ -f "$gan/weights.safetensors" ] || "$gen" train gan --data digits --out "$gan" --quiet --force
uptime | tee "$b/uptime.txt"
for pair in "ddpm:$ddpm:--steps 50 --batch 16:--n 16 --steps 50" "gan:$gan:--batch 64:--n 64"; do
  IFS=: read -r name run bench tune <<< "$pair"
  # every precision the plan may choose: ORT int8 and NNCF's int8-ov (speed rule off: the plan decides)
  "$gen" export "$run" --out "$b/$name" --int8 --int8-openvino --int8-min-speedup 0 --force > "$b/$name-export.log" 2>&1
  # shellcheck disable=SC2086
  "$gen" tune "$b/$name" $tune --max-seconds 90 | tee "$b/$name-tune.log"
  # shellcheck disable=SC2086
  "$gen" bench "$b/$name" --backends ort,openvino,auto --precisions fp32,bf16,int8,int8-bf16,int8-ov $bench --repeats 10 \
    --json "$out/plan_bench_$name$tag.json" | tee "$b/$name-bench.log"
  "$gen" eval "$b/$name" --backend ort --json "$out/plan_eval_${name}_ort_fp32$tag.json" > /dev/null
  "$gen" eval "$b/$name" --backend auto --json "$out/plan_eval_${name}_plan$tag.json" > /dev/null
done
uptime | tee -a "$b/uptime.txt"
