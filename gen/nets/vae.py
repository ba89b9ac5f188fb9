"""Convolutional VAE with a Bernoulli decoder (logits), the usual likelihood for digit-like images."""

from __future__ import annotations

import torch
from torch import nn

from gen.nets.gan import _stages


class _Codec(nn.Module):
    """The conv encoder (image -> features) and decoder (latent -> Bernoulli logits) that the VAE and
    the plain autoencoder share, so the two differ only in what the latent is."""

    def __init__(self, image_size: int, channels: int, latent_dim: int, width: int, stats: int):
        super().__init__()
        n = _stages(image_size)
        self.latent_dim = latent_dim
        enc, ch = [nn.Conv2d(channels, width, 3, 1, 1), nn.SiLU()], width
        for _ in range(n):
            enc += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.SiLU()]
            ch *= 2
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.to_stats = nn.Linear(ch * 16, stats)
        self.ch = ch
        self.from_z = nn.Sequential(nn.Linear(latent_dim, ch * 16), nn.SiLU())
        dec = []
        for _ in range(n):
            dec += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.SiLU()]
            ch //= 2
        dec.append(nn.Conv2d(ch, channels, 3, 1, 1))
        self.decoder_net = nn.Sequential(*dec)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_net(self.from_z(z).view(-1, self.ch, 4, 4))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image in [-1, 1]: the Bernoulli mean mapped from [0, 1]."""
        return torch.sigmoid(self.decode_logits(z)) * 2.0 - 1.0


class VAE(_Codec):
    def __init__(self, image_size: int, channels: int, latent_dim: int = 16, width: int = 32):
        super().__init__(image_size, channels, latent_dim, width, 2 * latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The latent a reconstruction decodes: the posterior's mean."""
        return self.encode(x)[0]


class Autoencoder(_Codec):
    """The deterministic baseline: one latent vector per image and no prior over them, so nothing
    says which latents decode to digits (why the VAE's KL term matters for sampling)."""

    def __init__(self, image_size: int, channels: int, latent_dim: int = 16, width: int = 32):
        super().__init__(image_size, channels, latent_dim, width, latent_dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_stats(self.encoder(x))


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions (closed form)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
