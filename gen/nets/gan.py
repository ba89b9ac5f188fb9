"""DCGAN-style generator and discriminator, scaled to the image size (4x4 up or down by 2x steps)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import spectral_norm


def _stages(image_size: int) -> int:
    n = math.log2(image_size / 4)
    if image_size < 8 or n != int(n):
        raise ValueError(f"GAN image size must be a power of two >= 8, got {image_size}")
    return int(n)


class Generator(nn.Module):
    """z (and a class embedding when conditional) -> 4x4 features -> transposed convs -> tanh image."""

    def __init__(self, image_size: int, channels: int, z_dim: int = 64, width: int = 64, num_classes: int = 0):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        n = _stages(image_size)
        ch = width * 2**n
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
        in_dim = z_dim * (2 if num_classes else 1)
        self.fc = nn.Sequential(nn.Linear(in_dim, ch * 16, bias=False), nn.BatchNorm1d(ch * 16), nn.ReLU(True))
        self.ch = ch
        blocks = []
        for _ in range(n):
            blocks += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        blocks += [nn.Conv2d(ch, channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(self.fc(z).view(-1, self.ch, 4, 4))  # -1, not len(z): keeps the batch axis dynamic in ONNX


class Discriminator(nn.Module):
    """Strided convs down to 4x4 -> one logit; conditional models add a projection term (Miyato 2018).

    `norm` is "batch" (BCE, LSGAN), "none" (WGAN-GP: the penalty is per sample, so no batch
    statistics) or "spectral" (hinge, spectral normalisation on every weight).
    """

    def __init__(self, image_size: int, channels: int, width: int = 64, num_classes: int = 0, norm: str = "batch"):
        super().__init__()
        sn = spectral_norm if norm == "spectral" else (lambda m: m)
        n = _stages(image_size)
        ch = width
        layers = [sn(nn.Conv2d(channels, ch, 3, 1, 1)), nn.LeakyReLU(0.2, True)]
        for _ in range(n):
            layers.append(sn(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm != "batch")))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        self.net = nn.Sequential(*layers)
        self.fc = sn(nn.Linear(ch * 16, 1))
        self.embed = sn(nn.Embedding(num_classes, ch * 16)) if num_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last layer's features, flattened: what feature matching compares (Salimans et al. 2016)."""
        return self.net(x).flatten(1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(self.features(x), labels)

    def score(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The logit of features `h`, plus the projection of the label's embedding when conditional."""
        out = self.fc(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(1)
        return out
