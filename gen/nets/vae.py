"""Convolutional VAE with a Bernoulli decoder (logits), the usual likelihood for digit-like images."""

from __future__ import annotations

import torch
from torch import nn

from gen.nets.gan import _stages


class VAE(nn.Module):
    def __init__(self, image_size: int, channels: int, latent_dim: int = 16, width: int = 32):
        super().__init__()
        n = _stages(image_size)
        self.latent_dim = latent_dim
        enc, ch = [nn.Conv2d(channels, width, 3, 1, 1), nn.SiLU()], width
        for _ in range(n):
            enc += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.SiLU()]
            ch *= 2
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.to_stats = nn.Linear(ch * 16, 2 * latent_dim)
        self.ch = ch
        self.from_z = nn.Sequential(nn.Linear(latent_dim, ch * 16), nn.SiLU())
        dec = []
        for _ in range(n):
            dec += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.SiLU()]
            ch //= 2
        dec.append(nn.Conv2d(ch, channels, 3, 1, 1))
        self.decoder_net = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_net(self.from_z(z).view(-1, self.ch, 4, 4))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image in [-1, 1]: the Bernoulli mean mapped from [0, 1]."""
        return torch.sigmoid(self.decode_logits(z)) * 2.0 - 1.0


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions (closed form)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
