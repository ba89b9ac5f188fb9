"""SRGAN-style nets (Ledig et al. 2017): a residual generator that upsamples with sub-pixel convolutions,
and a discriminator of strided convolutions.

Generator: a 3x3 conv, `blocks` residual blocks (conv-PReLU-conv, no BatchNorm: EDSR's finding that BN
hurts super-resolution, and it makes the exported net plain convolutions), a long skip, then one
conv + PixelShuffle(2) + PReLU per 2x of the scale, and a last conv. Its output is added to a bicubic
upscale of the input (VDSR's residual learning) and the last conv starts at zero, so an untrained
generator already gives the bicubic image and training learns only what bicubic misses. The residual
branch reads the input less its mean and has no biases (PReLU(0) = 0), so a flat input (black borders,
sky) comes out as exactly its bicubic upscale: with biases, a net trained on sr4x added ~1e-3 to flat
crops that bicubic gets exactly, and the per-crop mean PSNR fell 1 dB below bicubic's on their account
(sr4x's held-out set holds 105 crops of the retina photo, many of them black). The input is the
LOW-resolution image: 16x fewer pixels in than out at 4x.

Discriminator: SRGAN's conv / BatchNorm / LeakyReLU stack with a stride-2 layer after each stride-1
one, scaled to the crop (three halvings for 32 px), then a linear layer to one logit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, 1, 1, bias=False))

    def forward(self, x):
        return x + self.body(x)


class SRGenerator(nn.Module):
    def __init__(self, channels: int, width: int = 48, blocks: int = 6, scale: int = 4):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"scale must be a power of two >= 2, got {scale}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.PReLU(width))
        self.body = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)), nn.Conv2d(width, width, 3, 1, 1, bias=False))
        ups = []
        for _ in range(int(math.log2(scale))):  # sub-pixel convolution: 4x the channels, then PixelShuffle(2)
            ups += [nn.Conv2d(width, width * 4, 3, 1, 1, bias=False), nn.PixelShuffle(2), nn.PReLU(width)]
        self.up = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, channels, 3, 1, 1, bias=False)
        nn.init.zeros_(self.tail.weight)  # start as bicubic

    def forward(self, x):
        h = self.head(x - x.mean((2, 3), keepdim=True))
        h = self.up(h + self.body(h))
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return torch.clamp(base + self.tail(h), -1.0, 1.0)


class SRDiscriminator(nn.Module):
    def __init__(self, size: int, channels: int, width: int = 32):
        super().__init__()
        halvings = max(1, min(4, int(math.log2(size)) - 2))  # down to 4x4 at most (32 px: 3)
        layers, cin = [], channels
        for i in range(halvings):
            cout = width * 2**i
            layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=i == 0)] + ([] if i == 0 else [nn.BatchNorm2d(cout)])
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(cout, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
            cin = cout
        side = size // 2**halvings
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin * side * side, 4 * width), nn.LeakyReLU(0.2),
                                  nn.Linear(4 * width, 1))

    def forward(self, x):
        return self.body(x)
