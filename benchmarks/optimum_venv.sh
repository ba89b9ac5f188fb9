#!/usr/bin/env bash
# Create the optimum peer venv (.venv-optimum) that benchmarks/sd_peers.py runs optimum's ORT pipeline
# in. Separate from .venv: optimum-onnx 0.1.0 pins transformers<4.58 (see optimum-constraints.txt).
#   bash benchmarks/optimum_venv.sh            # ~1 min, ~1.4 GB; PYTHON=python3.11 to pick an interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
"${PYTHON:-python3}" -m venv .venv-optimum
.venv-optimum/bin/pip install -q -c benchmarks/optimum-constraints.txt \
  "optimum-onnx[onnxruntime]==0.1.0" onnxruntime==1.31.1 torch==2.13.0 "numpy<2" \
  diffusers==0.39.0 "transformers>=4.57,<4.58"
HF_HUB_OFFLINE=1 .venv-optimum/bin/python -c "from optimum.onnxruntime import ORTStableDiffusionPipeline" \
  && echo "optimum venv ready: .venv-optimum (run: .venv/bin/python benchmarks/sd_peers.py)"
