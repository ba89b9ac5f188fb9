#!/usr/bin/env bash
# One prepared GPU check (issue 16): every GPU path the host can run, parity, times -> OUTDIR/gpu_check.json.
#
#   here:        benchmarks/gpu_wheels.sh          # the wheels the GPU host's image lacks, into .whl/
#   GPU host:    benchmarks/gpu_check.sh OUTDIR    # the device tool: run(command=..., carry=[".whl"])
#
# On a host without gen installed it installs .whl/ offline into build/gpu-pkgs and runs gen from this
# tree (PYTHONPATH), on the image's own torch and onnxruntime. Without bundles/ddpm (carry it, or the
# README's main job makes it) it trains the default DDPM architecture for a few hundred steps on the
# host's CPU and exports it (or carry build/gpu-check/ddpm-short, made the same way here, to save device time): latency and parity do not depend on how long it trained, and the JSON says
# which it was. Under 9 minutes on an H100/H200 with the training; what the budget leaves out is recorded
# as skipped. The SD base and bundle go to build/gpu-check (GBs), not OUTDIR. Extra arguments go to
# gpu_check.py (--dry-run rehearses all of it on a CPU).
set -euo pipefail
out="${1:?usage: benchmarks/gpu_check.sh OUTDIR [gpu_check.py options]}"
shift
source "$(dirname "$0")/gpu_env.sh"
ddpm=bundles/ddpm
[ -f "$ddpm/gen.json" ] || ddpm=build/gpu-check/ddpm-short  # made here and carried, or trained below
if [ ! -f "$ddpm/gen.json" ]; then
    echo "no bundles/ddpm: training the default DDPM for ${GPU_CHECK_STEPS:-300} steps to time it" >&2
    "$python" -m gen train ddpm --data digits --out build/gpu-check/runs/ddpm-short --steps "${GPU_CHECK_STEPS:-300}" --force --quiet
    "$python" -m gen export build/gpu-check/runs/ddpm-short --out "$ddpm" --fp16 --force
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > /dev/null 2>&1 || echo "nvidia-smi: no GPU visible" >&2
# the JSON is rewritten after every row, so a run stopped by this timeout still brings back what it measured
timeout "${GPU_CHECK_TIMEOUT_S:-470}" "$python" benchmarks/gpu_check.py "$out" --ddpm "$ddpm" --budget-s "${GPU_CHECK_BUDGET_S:-400}" "$@"
