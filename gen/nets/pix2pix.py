"""pix2pix nets (Isola et al. 2017): a U-Net generator with skip connections and a PatchGAN discriminator,
both scaled to the image size.

The generator halves the image down to 1 x 1 (log2(size) encoder blocks, 4x4 stride-2 convolutions,
LeakyReLU 0.2, BatchNorm except the first and the bottleneck) and mirrors it back up with transposed
convolutions, each decoder block reading the matching encoder block's output too; dropout 0.5 in the
three innermost decoder blocks is the paper's only noise and is off at inference (eval mode), so an
exported generator is deterministic. The discriminator scores overlapping patches of (input, image)
pairs: the paper's 70 x 70 PatchGAN has 3 stride-2 layers for 256 px; smaller images get fewer
(32 px: 2, a 34 x 34 receptive field that still sees local texture, not the whole crop).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers, nn.LeakyReLU(0.2))


def _up(cin: int, cout: int, dropout: bool) -> nn.Sequential:
    layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
    if dropout:
        layers.append(nn.Dropout(0.5))
    return nn.Sequential(*layers, nn.ReLU())


def residual(config: dict) -> bool:
    """Whether the generator adds its output to its input: by default when both have the same
    channels (super-resolution, restoration), where the input is already a good guess and the net
    only has to learn the correction (VDSR's residual learning); `residual` in the config overrides."""
    given = config.get("residual")
    return config["input_channels"] == config["channels"] if given is None else bool(given)


class UNetGenerator(nn.Module):
    def __init__(self, size: int, in_channels: int, out_channels: int, width: int = 64, residual: bool = False):
        super().__init__()
        if residual and in_channels != out_channels:
            raise ValueError(f"a residual generator needs as many input as output channels ({in_channels} != {out_channels})")
        self.residual = residual
        depth = int(math.log2(size))
        widths = [min(width * 2**i, width * 8) for i in range(depth)]
        self.down = nn.ModuleList(
            _down(in_channels if i == 0 else widths[i - 1], widths[i], norm=0 < i < depth - 1) for i in range(depth))
        ups = []
        for i in reversed(range(depth - 1)):  # decoder block i mirrors encoder block i + 1
            cin = widths[i + 1] if i == depth - 2 else widths[i + 1] * 2
            ups.append(_up(cin, widths[i], dropout=i >= depth - 4))
        self.up = nn.ModuleList(ups)
        self.out = nn.Sequential(nn.ConvTranspose2d(widths[0] * 2, out_channels, 4, 2, 1), nn.Tanh())
        if residual:  # start as the identity: the input itself (the bicubic upscale) is the first guess
            nn.init.zeros_(self.out[0].weight)
            nn.init.zeros_(self.out[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        image = x
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck is the decoder's input, not a skip
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], 1)
        x = self.out(x)
        return (image + x).clamp(-1, 1) if self.residual else x


class PatchDiscriminator(nn.Module):
    def __init__(self, size: int, channels: int, width: int = 64):
        super().__init__()
        n = max(1, min(3, int(math.log2(size)) - 3))
        layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2)]
            c *= 2
        layers += [nn.Conv2d(c, c * 2, 4, 1, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2),
                   nn.Conv2d(c * 2, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        """Patch scores of one image, or of a pair (input, image) stacked on channels (pix2pix)."""
        return self.net(torch.cat(images, 1))
