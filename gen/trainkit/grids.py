"""Sample-grid layouts shared by trainers whose grids show inputs beside what the model made of them."""

from __future__ import annotations

import torch

ROW = 8  # images per grid row (gen.trainkit.train saves grids 8 wide)


def alternating_rows(*groups: torch.Tensor) -> torch.Tensor:
    """Rows of ROW images taken in turn from each group: input, reconstruction, input, ..."""
    return torch.cat([g[i:i + ROW] for i in range(0, len(groups[0]), ROW) for g in groups])
