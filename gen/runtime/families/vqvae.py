"""VQ-VAE bundles: `reconstruct(images)` through encoder (images -> codes) and decoder (codes ->
images); with a prior (a bundle exported from a `gen train vqvae-prior` run), `generate()` samples the
code grid one cell at a time in raster order from the prior's softmax (numpy draws, so a seed gives
the same codes on every backend) and decodes it. `temperature` is fixed at 1: the prior's own
distribution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.errors import GenError
from gen.runtime.families import Family


@dataclass
class VqVaeSampling:
    grid: int  # the code grid's side
    codebook_size: int
    prior: bool = False  # the bundle has a prior component and can generate()


class VqVae(Family):
    name = "vqvae"
    components = ("encoder", "decoder")
    Sampling = VqVaeSampling
    encoder = "encoder"
    discrete_sampling = True

    def check_manifest(self, manifest):
        sampling = super().check_manifest(manifest)
        if sampling.prior and "prior" not in manifest.components:
            raise GenError("sampling.prior is set but the bundle lacks its 'prior' component")
        return sampling

    def can_generate(self, bundle) -> bool:
        return bundle.sampling.prior

    def example_for(self, bundle) -> str:
        return "--n 16 --out grid.png" if bundle.sampling.prior else "--reconstruct --image IN.png --out OUT.png"

    def check(self, bundle, args):
        if not bundle.sampling.prior:
            raise GenError("this VQ-VAE bundle has no prior to sample codes from: train one with `gen train vqvae-prior "
                           "RUN` and export that run; reconstruct(images) works without it")

    def sample(self, backend, n, rng, args, on_step=None):
        s = backend.bundle.sampling
        cells, k = s.grid * s.grid, s.codebook_size
        tokens = np.full((n, cells), k, dtype=np.int64)  # the start token, then the codes so far
        codes = np.zeros((n, cells), dtype=np.int64)
        for i in range(cells):
            logits = backend.run("prior", {"tokens": tokens})[:, i].astype(np.float64)
            p = np.exp(logits - logits.max(1, keepdims=True))
            cdf = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
            codes[:, i] = np.minimum((cdf < rng.random((n, 1))).sum(1), k - 1)  # inverse-CDF draw
            if i + 1 < cells:
                tokens[:, i + 1] = codes[:, i]
            if on_step is not None:
                on_step(i, cells, None)
        return backend.run("decoder", {"codes": codes.reshape(n, s.grid, s.grid)})


FAMILY = VqVae()
