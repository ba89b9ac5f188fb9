"""A time-conditioned classifier of noised images, p(y | x_t, t), and its input gradient for
classifier guidance (Dhariwal & Nichol 2021).

Guidance needs grad_x log p(y | x_t) at every sampling step, on every backend. ONNX has no autograd
and torch.onnx's TorchScript exporter does not trace `torch.autograd.grad`, so `InputGradient` writes
the backward pass out as forward operations: the net is chosen so that this stays short (3x3
convolutions whose biases depend on t, SiLU, a mean pool and a linear head; no normalisation layer,
whose backward would be long). Convolution backward is a transposed convolution with the same weight,
SiLU's derivative is s(a)(1 + a(1 - s(a))), and log-softmax's is onehot(y) - softmax. The result is
one ONNX graph, checked against torch.autograd in the tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TIME_FEATURES = 64  # sinusoidal features of t before the embedding MLP


def timestep_features(t: torch.Tensor, dim: int = TIME_FEATURES) -> torch.Tensor:
    """Transformer-style sinusoids of the integer timestep (float math, so ONNX exports it as is)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / half))
    angles = t.to(torch.float32)[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def layer_plan(image_size: int, width: int) -> list[tuple[int, int]]:
    """(out channels, stride) per convolution: two at full size, halving down to 4x4, one more there."""
    plan = [(width, 1), (width, 1)]
    size = image_size
    while size > 4:
        plan.append((2 * width, 2))
        size //= 2
    plan.append((2 * width, 1))
    return plan


class NoisyClassifier(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: int, width: int = 32):
        super().__init__()
        plan = layer_plan(image_size, width)
        self.time = nn.Sequential(nn.Linear(TIME_FEATURES, 4 * width), nn.SiLU())
        ins = [channels] + [c for c, _ in plan[:-1]]
        self.convs = nn.ModuleList(nn.Conv2d(i, c, 3, s, 1) for i, (c, s) in zip(ins, plan))
        self.shifts = nn.ModuleList(nn.Linear(4 * width, c) for c, _ in plan)  # per-channel bias from t
        self.head = nn.Linear(plan[-1][0], num_classes)

    def pre_activations(self, x: torch.Tensor, t: torch.Tensor) -> tuple[list, list, torch.Tensor]:
        """(each layer's input, each layer's pre-activation, the pooled features)."""
        emb = self.time(timestep_features(t))
        inputs, pre = [], []
        h = x
        for conv, shift in zip(self.convs, self.shifts):
            inputs.append(h)
            a = conv(h) + shift(emb)[:, :, None, None]
            pre.append(a)
            h = F.silu(a)
        return inputs, pre, h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Logits of p(y | x_t, t)."""
        return self.head(self.pre_activations(x, t)[2])


def _silu_grad(a: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(a)
    return s * (1 + a * (1 - s))


class InputGradient(nn.Module):
    """grad_x log p(labels | x, t): the classifier's forward pass, then its backward written out."""

    def __init__(self, classifier: NoisyClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = self.classifier
        inputs, pre, pooled = c.pre_activations(sample, timestep)
        logits = c.head(pooled)
        g = F.one_hot(labels, logits.shape[1]).to(logits.dtype) - torch.softmax(logits, dim=1)  # d log p / d logits
        g = g @ c.head.weight  # d / d pooled
        last = pre[-1]
        g = g[:, :, None, None].expand_as(last) / (last.shape[2] * last.shape[3])  # d / d h (the mean pool)
        for conv, x_in, a in zip(reversed(c.convs), reversed(inputs), reversed(pre)):
            g = g * _silu_grad(a)  # d / d pre-activation
            stride, pad = conv.stride[0], conv.padding[0]
            extra = x_in.shape[2] - ((a.shape[2] - 1) * stride - 2 * pad + conv.kernel_size[0])
            g = F.conv_transpose2d(g, conv.weight, stride=stride, padding=pad, output_padding=extra)
        return g
