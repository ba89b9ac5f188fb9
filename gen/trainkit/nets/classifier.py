"""The small CNN whose features the dataset metrics (fd_*, is_*, precision/recall) are computed on."""

from __future__ import annotations

import torch
from torch import nn

FEATURE_DIM = 128


class FeatureClassifier(nn.Module):
    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(width, width * 2, 3, 2, 1), nn.ReLU(True),
            nn.Conv2d(width * 2, FEATURE_DIM, 3, 2, 1), nn.ReLU(True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
