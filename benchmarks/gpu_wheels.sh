#!/usr/bin/env bash
# The Python packages gen needs that the GPU host's image lacks, fetched HERE (the GPU host cannot
# download) as wheels for its Python (3.12, x86-64) into .whl/. The device call carries them
# (carry: [".whl"]) and benchmarks/gpu_check.sh installs them offline beside the image's own
# packages. Versions are this repo's pins (constraints.txt). Everything else gen imports (torch,
# onnx, onnxruntime, transformers, tokenizers, peft, scikit-learn, typer, ...) is in that image
# (../.library/device/KINDS.md) and used as it is; gpu_check.json records the versions that ran.
# onnxruntime-gpu is not carried: its wheel is far over the 64 MiB a call may carry.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(diffusers importlib_metadata zipp)
pins=()
for p in "${packages[@]}"; do
    pins+=("$(grep -E "^${p}==" constraints.txt)")
done
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${DEVICE_PYTHON:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d .whl "${pins[@]}"
du -sh .whl && ls .whl
