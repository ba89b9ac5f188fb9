"""The denoising autoencoder's network: the plain autoencoder (gen.nets.vae.Autoencoder) as one
image -> image map, so a corrupted image goes in and its restoration comes out in one call.

The bottleneck is the point (Vincent et al. 2008): the latent cannot hold the noise, so decoding it
projects the input back onto what the training images look like."""

from __future__ import annotations

import torch

from gen.nets.vae import Autoencoder


class DenoisingAutoencoder(Autoencoder):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.embed(x))
