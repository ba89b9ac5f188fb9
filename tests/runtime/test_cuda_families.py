"""Every family's bundle on CUDA (eager fp32 / fp16, compile fp16 with CUDA graphs) against the CPU's
eager fp32 images of the same seed. Skipped without a CUDA GPU; run on a GPU host with
`bash benchmarks/gpu_tests.sh OUTDIR` (pytest -m gpu -s; each case prints its figures).
Timed GPU paths: benchmarks/gpu_check.sh."""

import importlib.util

import numpy as np
import pytest

from gen.runtime.bundle import load_bundle
from gen.runtime.sampler import Sampler

HAS_CUDA = importlib.util.find_spec("torch") is not None and __import__("torch").cuda.is_available()

# the bundles of tests/bundles_fixture.py, by family, with the arguments each one's generate() takes
DIFFUSION = {"steps": 4}
ARGUMENTS = {"gan": {}, "cgan": {}, "vae": {}, "stylegan": {}, "vqvae-prior": {}, "ddpm": DIFFUSION, "cddpm": DIFFUSION,
             "ddpm-guided": DIFFUSION, "cd-student": {"steps": 2}, "pix2pix": {"image": None},
             "cyclegan": {"image": None, "direction": "BtoA"},
             "sd": {"prompt": "a red house by a lake", "steps": 3, "guidance": 7.5}}
PATHS = [("eager", "fp32"), ("eager", "fp16"), ("compile", "fp16")]
# max abs image difference against CPU fp32: cuDNN runs fp32 convolutions in TF32 by default, and fp16
# rounds at every layer; a wrong weight, layout or scheduler step differs by O(1)
TOLERANCE = {"fp32": 0.05, "fp16": 0.2}


def _arguments(name, path):
    args = dict(ARGUMENTS[name])
    if "image" in args:  # the translation families take an input image of the bundle's size
        image = load_bundle(path).image
        args["image"] = np.random.default_rng(0).integers(0, 256, (image.height, image.width), dtype=np.uint8)
    return args


def compare_with_cpu(path, name, backend, device, precision):
    """The images of `backend` on `device` against the CPU's eager fp32, same seed: (max, mean) abs."""
    args = _arguments(name, path)
    n = 1 if name == "sd" else 4
    with Sampler(path, backend="eager", threads=2) as cpu:
        reference = cpu.generate(n=n, seed=3, **args)
    with Sampler(path, backend=backend, device=device, precision=precision) as s:
        images = s.generate(n=n, seed=3, **args)
        again = s.generate(n=n, seed=3, **args)  # compile: the graphs' replay, not the first call
        described = s.backend.describe()
    assert described["device"] == device and described["precision"] == precision
    assert images.shape == reference.shape and np.isfinite(images).all()
    _agree(name, again, images, 1e-2)  # a seed gives the same images call after call
    difference = np.abs(images - reference)
    print(f"\n{name} {backend} {device} {precision}: max abs {difference.max():.2e}, mean abs {difference.mean():.2e}")
    _agree(name, images, reference, TOLERANCE[precision])


def _agree(name, a, b, tolerance):
    difference = np.abs(a - b)
    if name == "vqvae-prior":
        # codes are drawn one cell at a time from the prior's softmax: a near-tie can flip one code and
        # change its patch entirely, so the images agree on average, not at every pixel
        assert difference.mean() <= tolerance / 4, (difference.mean(), tolerance / 4)
    else:
        assert difference.max() <= tolerance, (difference.max(), tolerance)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch sees none); the CPU tests cover these paths' refusals")
@pytest.mark.parametrize("name", list(ARGUMENTS))
@pytest.mark.parametrize("backend,precision", PATHS)  # the outer loop: every family's eager runs before any compiles
def test_every_family_runs_on_cuda_like_on_the_cpu(bundles, sd_bundle, name, backend, precision):
    compare_with_cpu(str(sd_bundle if name == "sd" else bundles[name]), name, backend, "cuda", precision)
