#!/usr/bin/env bash
# The tests that need a CUDA GPU (pytest -m gpu: every family's bundle on CUDA eager fp32/fp16 and
# compile fp16 against the CPU's images), on a GPU host, in one call beside gpu_check.sh:
#
#   here:        benchmarks/gpu_wheels.sh
#   GPU host:    benchmarks/gpu_tests.sh OUTDIR     # run(command=..., carry=[".whl"]); a few minutes
#
# Each case prints its max / mean abs difference; the log goes to OUTDIR/gpu_tests.log and pytest's
# report to OUTDIR/gpu_tests.xml. Extra arguments go to pytest (-k compile, -x, ...).
set -euo pipefail
out="${1:?usage: benchmarks/gpu_tests.sh OUTDIR [pytest options]}"
shift
mkdir -p "$out"
out="$(cd "$out" && pwd)"
source "$(dirname "$0")/gpu_env.sh"
# only the files that hold gpu-marked tests: collecting the others would import what the host lacks (tritonclient, ...)
mapfile -t files < <(grep -rl --include='test_*.py' "pytest.mark.gpu" tests)
"$python" -m pytest -m gpu -s -q -p no:cacheprovider --junitxml "$out/gpu_tests.xml" "$@" "${files[@]}" 2>&1 | tee "$out/gpu_tests.log"
