"""StyleGAN2-style nets (Karras et al. 2020), scaled down: mapping z -> w, a synthesis network of
weight-modulated convolutions with per-layer noise, and a residual discriminator.

- **Mapping**: z normalised to unit RMS (pixel norm), then an MLP whose layers run at 1/100 of the
  learning rate (the paper's lr multiplier), to w. `w_avg` tracks the mean w while training: the
  centre the truncation trick pulls towards.
- **Synthesis**: a learned 4 x 4 constant; per resolution two 3x3 convolutions (one at 4 x 4) whose
  weights are modulated by a style (an affine map of w) and then demodulated (each output feature's
  weight vector rescaled to unit norm: StyleGAN2's replacement for AdaIN, which removes its droplet
  artefacts), each followed by scaled noise, bias and leaky ReLU; and a 1x1 "toRGB" per resolution whose
  outputs are upsampled and summed (the skip architecture). Modulation is applied to the activations
  (scale the input channels, convolve with the shared weight, rescale the outputs), which is the same
  arithmetic as modulating the weight but keeps a plain convolution with a dynamic batch in ONNX.
  One w per layer in order (`num_ws`), so style mixing is a matter of which w each layer reads.
- **Noise**: random while training; at inference, fixed per-layer noise images stored with the
  weights (the official code's noise_mode="const"), so an exported network is deterministic.
- **Progressive growing** (ProGAN's schedule, in the skip form): `fade` weights each resolution's
  toRGB contribution (0 before its stage, ramping 0 -> 1 while it fades in, 1 after); the trainer
  blurs real images to the current resolution in the same proportion, so both players grow together.
- Every weight uses the equalised learning rate (N(0, 1) init, scaled by 1/sqrt(fan_in) at run time).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def resolutions(image_size: int) -> list[int]:
    n = math.log2(image_size)
    if image_size < 8 or n != int(n):
        raise ValueError(f"StyleGAN image size must be a power of two >= 8, got {image_size}")
    return [2**i for i in range(2, int(n) + 1)]


def num_ws(image_size: int) -> int:
    """Style inputs of the synthesis network: conv + toRGB at 4 x 4, then two convs + toRGB per resolution
    (a toRGB reads the w of the conv after it, as StyleGAN2 does)."""
    return 2 * len(resolutions(image_size))


class EqualLinear(nn.Module):
    def __init__(self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.scale, self.lr_mul = lr_mul / math.sqrt(cin), lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Mapping(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, layers: int = 4, lr_mul: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
        for layer in self.net:
            x = F.leaky_relu(layer(x), 0.2) * math.sqrt(2)
        if self.training:  # the running mean of w: the truncation trick's centre
            with torch.no_grad():
                self.w_avg.lerp_(x.detach().mean(0), 1 - self.w_avg_beta)
        return x

    def truncate(self, w: torch.Tensor, psi) -> torch.Tensor:
        """The truncation trick: w pulled towards the mean w; `psi` a number or one per row of w."""
        psi = psi[:, None] if torch.is_tensor(psi) else psi
        return self.w_avg + psi * (w - self.w_avg)


class ModulatedConv(nn.Module):
    def __init__(self, cin: int, cout: int, w_dim: int, kernel: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)  # styles start at 1: the plain convolution
        self.scale = 1 / math.sqrt(cin * kernel * kernel)
        self.demodulate, self.padding = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # [B, cin]
        weight = self.weight * self.scale
        x = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:  # 1 / ||weight * style|| per output feature and sample
            d = torch.rsqrt((style[:, None, :, None, None] * weight[None]).pow(2).sum([2, 3, 4]) + 1e-8)
            x = x * d[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """Modulated 3x3 conv, noise, bias, leaky ReLU (optionally after a 2x bilinear upsampling)."""

    def __init__(self, cin: int, cout: int, w_dim: int, size: int, up: bool):
        super().__init__()
        self.up = up
        self.conv = ModulatedConv(cin, cout, w_dim, 3)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("noise_const", torch.randn(1, 1, size, size))

    def forward(self, x, w, noise: torch.Tensor | None = None):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        x = x + (self.noise_const if noise is None else noise) * self.noise_strength
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    def __init__(self, cin: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(cin, channels, w_dim, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, w):
        return self.conv(x, w) + self.bias[None, :, None, None]


class Synthesis(nn.Module):
    def __init__(self, image_size: int, channels: int, w_dim: int, width: int = 64, max_width: int = 256):
        super().__init__()
        self.sizes = resolutions(image_size)
        ch = {s: min(max_width, width * (image_size // s)) for s in self.sizes}
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.layers, self.to_rgb = nn.ModuleList(), nn.ModuleList()
        prev = ch[4]
        for s in self.sizes:
            convs = [StyleLayer(prev, ch[s], w_dim, s, up=False)] if s == 4 else \
                [StyleLayer(prev, ch[s], w_dim, s, up=True), StyleLayer(ch[s], ch[s], w_dim, s, up=False)]
            self.layers.append(nn.ModuleList(convs))
            self.to_rgb.append(ToRGB(ch[s], channels, w_dim))
            prev = ch[s]
        self.num_ws = num_ws(image_size)

    def forward(self, ws: torch.Tensor, fade: torch.Tensor | None = None, random_noise: torch.Generator | None = None):
        """ws [B, num_ws, w_dim] -> images in [-1, 1]. `fade` [len(sizes)]: each resolution's share
        (progressive growing; None: all 1). `random_noise`: fresh noise from this generator (training)."""
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        rgb, i = None, 0
        for k, (convs, to_rgb) in enumerate(zip(self.layers, self.to_rgb)):
            for layer in convs:
                noise = None
                if random_noise is not None:
                    noise = torch.randn((x.shape[0], 1, *layer.noise_const.shape[2:]), generator=random_noise)
                x = layer(x, ws[:, i], noise)
                i += 1
            y = to_rgb(x, ws[:, i])
            if fade is not None:
                y = y * fade[k]
            rgb = y if rgb is None else F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + y
        return torch.tanh(rgb)  # gen's images live in [-1, 1]


class StyleGenerator(nn.Module):
    def __init__(self, image_size: int, channels: int, z_dim: int = 64, w_dim: int = 64, width: int = 64,
                 mapping_layers: int = 4):
        super().__init__()
        self.mapping = Mapping(z_dim, w_dim, mapping_layers)
        self.synthesis = Synthesis(image_size, channels, w_dim, width)
        self.num_ws = self.synthesis.num_ws

    def forward(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        w = self.mapping.truncate(self.mapping(z), psi)
        return self.synthesis(w[:, None].expand(-1, self.num_ws, -1))


class _DBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(cin, cin, 3, 1, 1), nn.Conv2d(cin, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.avg_pool2d(F.leaky_relu(self.conv2(y), 0.2), 2)
        return (y + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


class StyleDiscriminator(nn.Module):
    """Residual blocks down to 4 x 4, then the minibatch standard deviation (ProGAN: lets the critic see
    a batch with too little variety), a conv and two linear layers to one logit."""

    def __init__(self, image_size: int, channels: int, width: int = 64, max_width: int = 256, group: int = 4):
        super().__init__()
        ch = {s: min(max_width, width * (image_size // s)) for s in resolutions(image_size)}
        self.from_rgb = nn.Conv2d(channels, ch[image_size], 1)
        self.blocks = nn.Sequential(*(_DBlock(ch[s], ch[s // 2]) for s in reversed(resolutions(image_size)[1:])))
        self.group = group
        self.conv = nn.Conv2d(ch[4] + 1, ch[4], 3, 1, 1)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(ch[4] * 16, ch[4]), nn.LeakyReLU(0.2), nn.Linear(ch[4], 1))

    def forward(self, x):
        x = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        b = x.shape[0]
        g = min(self.group, b) if b % min(self.group, b) == 0 else 1
        std = x.view(g, -1, *x.shape[1:]).std(0, unbiased=False).mean([1, 2, 3])  # one value per group member
        x = torch.cat([x, std.repeat(g)[:, None, None, None].expand(-1, 1, 4, 4)], 1)
        return self.fc(F.leaky_relu(self.conv(x), 0.2))
