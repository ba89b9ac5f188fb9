"""Image agreement between two ways of running one bundle: what export's precision checks, int8's gate
and the per-host plan all judge by, on whole sampling runs from the same seed."""

from __future__ import annotations

import numpy as np


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 2.0) -> float:
    """PSNR in dB; `peak` is the signal's range (2 for images in [-1, 1])."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def check_images(sampler, **generate_kwargs) -> np.ndarray:
    """One call of `sampler` with what the family needs beyond n and seed (an input image for
    image-to-image) unless given; for a model that cannot sample (an autoencoder), its
    reconstructions of `n` seeded random images."""
    bundle = sampler.bundle
    if not bundle.spec.can_generate(bundle):  # an autoencoder without a prior: its reconstructions instead
        img = bundle.image
        rng = np.random.default_rng(generate_kwargs.get("seed", 0))
        return sampler.reconstruct(rng.integers(0, 256, (generate_kwargs.get("n", 8), img.height, img.width, img.channels),
                                                dtype=np.uint8))
    needed = {k: v for k, v in bundle.spec.bench_arguments(None, bundle).items() if v is not None}
    return sampler.generate(**{**needed, **generate_kwargs})
