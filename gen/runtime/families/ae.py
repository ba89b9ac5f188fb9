"""Autoencoder bundles: `reconstruct(images)` only. An AE has no prior over its latents, so there is
nothing to sample z from; generate() says so and points to the VAE."""

from __future__ import annotations

from dataclasses import dataclass

from gen.errors import GenError
from gen.runtime.families import Family


@dataclass
class AeSampling:
    latent_dim: int


class Autoencoder(Family):
    name = "ae"
    components = ("encoder", "decoder")
    Sampling = AeSampling
    encoder = "encoder"
    example = "--reconstruct --image IN.png --out OUT.png"

    def can_generate(self, bundle) -> bool:
        return False

    def check(self, bundle, args):
        raise GenError("an autoencoder has no prior over its latents, so it cannot generate(): use "
                       "Sampler(bundle).reconstruct(images), or train a VAE (gen train vae) or a VQ-VAE with a prior to sample")


FAMILY = Autoencoder()
