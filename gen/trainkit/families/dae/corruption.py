"""The corruptions a denoising autoencoder learns to undo, on images in [-1, 1] (torch).

Levels are in units of the [0, 1] intensity range, the convention of scikit-image's `random_noise`
and of the denoising papers: gaussian sigma 0.2 is a standard deviation of 51 of 255 grey levels;
masking and salt-pepper `amount` is the fraction of pixels hit (all channels of a pixel at once).
The result is clipped to [-1, 1], as a noisy image file is.
"""

from __future__ import annotations

import torch

from gen.trainkit.families.dae import CORRUPTIONS


def corrupt(x: torch.Tensor, kind: str, level: torch.Tensor | float, g: torch.Generator) -> torch.Tensor:
    """`x` corrupted by `kind` at `level` (a number, or one per image shaped (N, 1, 1, 1))."""
    level = torch.as_tensor(level, dtype=x.dtype)
    if kind == "gaussian":
        return (x + 2.0 * level * torch.randn(x.shape, generator=g)).clamp(-1.0, 1.0)
    hit = torch.rand((len(x), 1, *x.shape[2:]), generator=g) < level
    if kind == "masking":  # dropped pixels read black (Vincent et al.'s masking noise)
        return torch.where(hit, torch.full_like(x, -1.0), x)
    if kind == "salt-pepper":
        salt = torch.rand((len(x), 1, *x.shape[2:]), generator=g) < 0.5
        return torch.where(hit, torch.where(salt, 1.0, -1.0).to(x.dtype).expand_as(x), x)
    raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")


def training_levels(n: int, level: float, g: torch.Generator) -> torch.Tensor:
    """One level per image, uniform in [0, level]: the model restores any noise up to the level it
    was trained for (a blind denoiser, as DnCNN is trained), not only that exact level."""
    return torch.rand((n, 1, 1, 1), generator=g) * level
