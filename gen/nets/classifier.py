"""The small CNN whose features the dataset metrics (fd_*, is_*, precision/recall) are computed on.

Features are the last conv block pooled to a 2x2 map and flattened (512-d), not globally averaged:
for small images like digits, where a stroke sits is much of what makes the digit, and a global
average threw that away (FD for Gaussian noise fell from ~430 to ~66 with the pooled variant, while
real-vs-real stayed near 0.5-9; measured with the DDPM run, 2026-11-22).
"""

from __future__ import annotations

import torch
from torch import nn

CHANNELS = 128
FEATURE_DIM = CHANNELS * 4


def _block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(True)]


class FeatureClassifier(nn.Module):
    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            *_block(channels, width, 1), *_block(width, width, 1),
            *_block(width, width * 2, 2), *_block(width * 2, CHANNELS, 2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def blocks(self) -> list[nn.Module]:
        """The four conv blocks (conv, BN, ReLU each), the pooling head left out: the feature maps that
        perceptual losses and distances compare, at any image size."""
        layers = list(self.body)
        return [nn.Sequential(*layers[i:i + 3]) for i in range(0, 12, 3)]

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each conv block's output, each fed the last (the `features` feature_distance compares)."""
        out = []
        for block in self.blocks():
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def feature_distance(features, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over the network's feature maps of |f(x) - f(y)|^2 / |f(y)|^2: each layer counts alike,
    whatever its scale. `features(x)` returns the maps (srgan's perceptual loss, gen optimize's SD figure)."""
    terms = [((a - b) ** 2).mean() / (b**2).mean().clamp_min(1e-8) for a, b in zip(features(x), features(y.detach()))]
    return torch.stack(terms).mean()
