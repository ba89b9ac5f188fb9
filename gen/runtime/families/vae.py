"""VAE bundles: z ~ N(0, I), then one `decoder(z)` call; `reconstruct(images)` decodes the
encoder's posterior mean (bundles exported since the encoder was added have one)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.runtime.families import Family


@dataclass
class VaeSampling:
    latent_dim: int


class Vae(Family):
    name = "vae"
    components = ("decoder",)
    Sampling = VaeSampling
    encoder = "encoder"

    def sample(self, backend, n, rng, args, on_step=None):
        z = rng.standard_normal((n, backend.bundle.sampling.latent_dim), dtype=np.float32)
        return backend.run("decoder", {"z": z})


FAMILY = Vae()
