"""Autoencoder training: the VAE's networks and Bernoulli likelihood, without the KL term or the
sampling noise. It reconstructs as well or better than the VAE, but its latents follow no known
distribution, so it cannot generate: the baseline that shows what the VAE's prior buys."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.vae import Autoencoder
from gen.trainkit.families.vae.trainer import VaeTrainer
from gen.trainkit.grids import alternating_rows

GRID_IMAGES = 32  # held-out images in a grid, each above its reconstruction


class AeTrainer(VaeTrainer):
    net_class = Autoencoder

    def __init__(self, config: dict):
        super().__init__(config)
        self.grid_images = None

    def attach_data(self, data) -> None:
        self.grid_images = torch.from_numpy(data.test_x if len(data.test_x) else data.train_x)[:GRID_IMAGES]

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        x, _ = batch(g)
        self.vae.train()
        logits = self.vae.decode_logits(self.vae.embed(x))
        loss = F.binary_cross_entropy_with_logits(logits, (x + 1.0) / 2.0, reduction="none").flatten(1).sum(1).mean()
        self.optimizers["vae"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["vae"].step()
        return {"recon": loss.item()}

    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, **_) -> torch.Tensor:
        """Nothing to sample from: rows of held-out images over their reconstructions."""
        self.vae.eval()
        x = self.grid_images
        recon = self.vae.decode(self.vae.embed(x))
        return alternating_rows(x, recon)
