"""Denoising autoencoder training (Vincent et al. 2008): each step corrupts a clean batch afresh
(gaussian, masking or salt-pepper, at a level drawn per image up to the run's) and trains the AE
to map it back to the clean images by mean squared error, the loss PSNR measures. The corruption
comes from the step's generator, so a resumed run replays it exactly."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.dae import DenoisingAutoencoder
from gen.trainkit.families.ae.trainer import AeTrainer
from gen.trainkit.families.dae import level
from gen.trainkit.families.dae.corruption import corrupt, training_levels
from gen.trainkit.grids import alternating_rows


class DaeTrainer(AeTrainer):
    net_class = DenoisingAutoencoder

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        x, _ = batch(g)
        c = self.config
        noisy = corrupt(x, c["corruption"], training_levels(len(x), level(c), g), g)
        self.vae.train()
        loss = F.mse_loss(self.vae(noisy), x)
        self.optimizers["vae"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["vae"].step()
        return {"mse": loss.item()}

    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, **_) -> torch.Tensor:
        """Rows of held-out images corrupted at the run's level, their restorations and the clean images."""
        self.vae.eval()
        clean = self.grid_images
        noisy = corrupt(clean, self.config["corruption"], level(self.config), g)
        return alternating_rows(noisy, self.vae(noisy), clean)
