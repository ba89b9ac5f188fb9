"""srgan's content losses: L1, the MS-SSIM + L1 mix, and a feature (perceptual) distance.

MS-SSIM (Wang et al. 2003) with a Gaussian window of sigma 1.5 cut to 7 taps (11 does not fit the
8 px of a 32 px crop's third scale) and three scales, weighted by the paper's first three weights
renormalised to sum 1; images in [-1, 1] (data range 2, C1 = (0.01 * 2)^2, C2 = (0.03 * 2)^2);
negative terms clipped just above 0 (pytorch_msssim clips at 0, whose power has no finite gradient).
One scale of it at 11 taps equals scikit-image's Gaussian SSIM (tests/trainkit/test_srgan.py). The
mix is Zhao et al.'s (2017) 0.84 MS-SSIM + 0.16 L1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.classifier import feature_distance  # noqa: F401  (the perceptual loss; shared with gen optimize)

SIGMA, TAPS = 1.5, 7
WEIGHTS = (0.0448, 0.2856, 0.3001)  # the paper's first three scales
MIX = 0.84  # Zhao et al.'s alpha


def _window(channels: int, taps: int = TAPS) -> torch.Tensor:
    x = torch.arange(taps, dtype=torch.float32) - (taps - 1) / 2
    g = torch.exp(-(x**2) / (2 * SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, taps, taps).contiguous()


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, taps: int = TAPS):
    """(mean SSIM, mean contrast-structure term) per image, on the window's valid positions."""
    c = x.shape[1]
    w = _window(c, taps).to(x)
    blur = lambda t: F.conv2d(t, w, groups=c)
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    cs = (2 * cov + c2) / (vx + vy + c2)
    ssim = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return ssim.flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor, taps: int = TAPS) -> torch.Tensor:
    return _ssim_terms(x, y, taps=taps)[0]


def ms_ssim(x: torch.Tensor, y: torch.Tensor, weights=WEIGHTS) -> torch.Tensor:
    """Per-image MS-SSIM of NCHW images in [-1, 1]; the smallest scale must hold the window."""
    if min(x.shape[-2:]) // 2 ** (len(weights) - 1) < TAPS:
        raise ValueError(f"MS-SSIM over {len(weights)} scales needs images of at least {TAPS * 2 ** (len(weights) - 1)} px")
    w = torch.tensor(weights, dtype=x.dtype) / sum(weights)
    out = 1.0
    for i in range(len(weights)):
        s, cs = _ssim_terms(x, y)
        if i == len(weights) - 1:
            return out * s.clamp_min(1e-6) ** w[i]
        out = out * cs.clamp_min(1e-6) ** w[i]
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out


def msssim_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return MIX * (1 - ms_ssim(x, y)).mean() + (1 - MIX) * (x - y).abs().mean()
