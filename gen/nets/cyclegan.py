"""CycleGAN nets (Zhu et al. 2017): ResNet generators (Johnson et al. 2016) both ways, and the image pool.

The generator is the paper's c7s1-w, d2w, d4w, R4w x blocks, u2w, uw, c7s1-out: reflection padding,
instance normalisation, two stride-2 downsamplings, residual blocks at a quarter of the size, two
upsamplings, tanh. The discriminators are gen.nets.pix2pix's PatchGAN on one image. The pool (Shrivastava
et al. 2017) feeds the discriminators a mix of fresh and older fakes, so they do not chase the
generator's latest output; it is a module with buffers so a checkpoint holds it and a resumed run
draws the same history.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    pad = [nn.ReflectionPad2d(k // 2)] if stride == 1 and k > 1 else []
    return [*pad, nn.Conv2d(cin, cout, k, stride, 0 if pad else 1, bias=False), nn.InstanceNorm2d(cout, affine=True),
            nn.ReLU()]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*_conv(channels, channels, 3), nn.ReflectionPad2d(1),
                                  nn.Conv2d(channels, channels, 3, bias=False), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int = 64, blocks: int = 6):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            *_conv(in_channels, w, 7), *_conv(w, 2 * w, 3, 2), *_conv(2 * w, 4 * w, 3, 2),
            *(ResidualBlock(4 * w) for _ in range(blocks)),
            nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, output_padding=1, bias=False), nn.InstanceNorm2d(2 * w, affine=True), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 3, 2, 1, output_padding=1, bias=False), nn.InstanceNorm2d(w, affine=True), nn.ReLU(),
            nn.ReflectionPad2d(3), nn.Conv2d(w, out_channels, 7), nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CycleGenerators(nn.Module):
    """Both directions in one module: `ab` turns domain A into B, `ba` B into A."""

    def __init__(self, channels: int, width: int, blocks: int):
        super().__init__()
        self.ab = ResnetGenerator(channels, channels, width, blocks)
        self.ba = ResnetGenerator(channels, channels, width, blocks)


class ImagePool(nn.Module):
    """The last `size` fakes; `query` returns, for each new fake, with probability 1/2 a stored one
    (which the new fake replaces), else the new fake itself, as in the paper's reference code."""

    def __init__(self, size: int, shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def query(self, fakes: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        fakes = fakes.detach()
        size, out = len(self.images), []
        for fake in fakes:
            n = int(self.count)
            if n < size:  # fill first
                self.images[n] = fake
                self.count += 1
                out.append(fake)
            elif float(torch.rand((), generator=g)) < 0.5:
                i = int(torch.randint(size, (), generator=g))
                out.append(self.images[i].clone())
                self.images[i] = fake
            else:
                out.append(fake)
        return torch.stack(out)
