"""A tiny latent decoder (TAESD-like): a few conv + ReLU blocks and three nearest-neighbour x2
upsamplings, no attention and no normalisation, so it costs a small fraction of a Stable Diffusion
VAE decoder. Once a few-step sampler makes the UNet cheap, the decoder dominates (FastSD CPU: 3.8 s
-> 0.82 s per image with TAESD); this one is distilled from a bundle's own decoder
(gen.trainkit.sd.tiny_decoder) and exported beside it.

Input and output match the bundle's `vae_decoder`: `latent_sample` (already divided by the VAE's
scaling factor) -> an image in [-1, 1] (unclamped, as the VAE's). Channels narrow as the resolution
grows, which is where a full decoder spends its time.
"""

from __future__ import annotations

import torch
from torch import nn

# latent grid, x2, x4, x8 (pixels): the widths of each resolution's blocks
DEFAULT_WIDTHS = (64, 64, 32, 16)
DEFAULT_BLOCKS = (2, 2, 1, 1)


class Block(nn.Module):
    """conv-ReLU-conv plus the input (TAESD's residual block, one conv shorter)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x) + x)


class TinyDecoder(nn.Module):
    """latent_sample [B, C, h, w] -> sample [B, 3, 8h, 8w]. `scale` divides the input first (the
    training latents' standard deviation), so its weights see unit-scale values."""

    def __init__(self, latent_channels: int = 4, out_channels: int = 3, widths=DEFAULT_WIDTHS, blocks=DEFAULT_BLOCKS,
                 scale: float = 1.0):
        super().__init__()
        widths, blocks = tuple(widths), tuple(blocks)
        if len(widths) != len(blocks) or len(widths) < 2:
            raise ValueError(f"widths {widths} and blocks {blocks} must have one entry per resolution (at least 2)")
        self.register_buffer("scale", torch.tensor(float(scale)))
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, widths[0], 3, padding=1), nn.ReLU()]
        for i, (ch, n) in enumerate(zip(widths, blocks)):
            if i:  # up x2, then to this resolution's width
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(widths[i - 1], ch, 3, padding=1), nn.ReLU()]
            layers += [Block(ch) for _ in range(n)]
        layers.append(nn.Conv2d(widths[-1], out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, latent_sample):
        return self.net(latent_sample / self.scale)


def build(config: dict) -> TinyDecoder:
    """The net a run's (or a bundle's) tiny-decoder config describes."""
    return TinyDecoder(config["latent_channels"], config.get("out_channels", 3), config["widths"], config["blocks"],
                       config.get("scale", 1.0))


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
