# Sourced by the GPU host's scripts (gpu_check.sh, gpu_tests.sh): picks the Python, and on a host
# without gen installed installs the carried .whl/ (benchmarks/gpu_wheels.sh) offline into
# build/gpu-pkgs and puts this tree on PYTHONPATH, beside the image's own torch and onnxruntime.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] && python=.venv/bin/python
if ! "$python" -c "import diffusers" 2>/dev/null && compgen -G ".whl/*.whl" > /dev/null; then
    "$python" -m pip install -q --no-deps --no-index --target build/gpu-pkgs .whl/*.whl
    export PYTHONPATH="$PWD/build/gpu-pkgs${PYTHONPATH:+:$PYTHONPATH}"
fi
"$python" -c "import gen" 2>/dev/null || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$python" -c "import diffusers, gen" || { echo "gen or diffusers is missing: run benchmarks/gpu_wheels.sh where pip can download, and carry .whl" >&2; exit 2; }
