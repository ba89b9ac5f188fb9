#!/usr/bin/env bash
# Create the optimum-intel peer venv (.venv-optimum-intel) that benchmarks/sd_peers.py runs
# OVStableDiffusionPipeline in. Separate from .venv and .venv-optimum: optimum-intel 2.2.0 pins
# huggingface-hub<1.22 and transformers<5.6, the main venv has huggingface-hub 2.x / diffusers 0.42 (which
# needs hub>=1.32), and optimum-onnx (in .venv-optimum) pins transformers<4.58 (see optimum-intel-constraints.txt).
#   bash benchmarks/optimum_intel_venv.sh       # ~3 min, ~1.6 GB; PYTHON=python3.11 to pick an interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
"${PYTHON:-python3}" -m venv .venv-optimum-intel
.venv-optimum-intel/bin/pip install -q -c benchmarks/optimum-intel-constraints.txt \
  "optimum-intel[openvino,diffusers]==2.2.0" torch==2.13.0 "numpy<2"
# optimum-intel 2.2.0 requires torchvision, but PyPI's torchvision is a CUDA build whose ops do not load
# against the CPU torch (importing it fails: "operator torchvision::nms does not exist", and transformers
# imports it when present). Nothing optimum-intel does for Stable Diffusion uses it, so it goes.
.venv-optimum-intel/bin/pip uninstall -q -y torchvision
HF_HUB_OFFLINE=1 .venv-optimum-intel/bin/python -c "from optimum.intel import OVStableDiffusionPipeline" \
  && echo "optimum-intel venv ready: .venv-optimum-intel (run: .venv/bin/python benchmarks/sd_peers.py)"
