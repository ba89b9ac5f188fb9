"""StarGAN nets (Choi et al. 2018): one generator for every domain, told the target by input channels,
and a discriminator with two heads.

The generator is gen.nets.cyclegan's ResNet generator reading the image and the target domain's
one-hot tiled over the image as extra channels (the paper's way), with each instance normalisation's
scale and shift chosen by the domain (conditional instance norm, Dumoulin et al. 2017). The second
part is not the paper's, and it is needed: a channel constant over the image becomes a constant
offset after the first convolution, which the instance norm right after it subtracts, so the tiled
one-hot alone reaches the network only through the borders' padding (a generator trained so learnt
one translation for every target and wrote dots along the left edge). It takes the domain as an
int64 index, so the ONNX graph holds the one-hot (an Equal against 0..n-1), and callers pass a number.
The discriminator is the paper's: stride-2 4x4 convolutions with leaky ReLU and no normalisation,
then a 3x3 patch head (real or fake) and a head over the remaining grid that classifies the domain.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gen.nets.cyclegan import ResnetGenerator


class DomainNorm(nn.Module):
    """Instance norm whose scale and shift are the domain's (a row of `weight` and `bias` per domain),
    picked by the one-hot that StarGenerator sets in `code` before each call."""

    def __init__(self, channels: int, domains: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels)
        self.weight = nn.Parameter(torch.ones(domains, channels))
        self.bias = nn.Parameter(torch.zeros(domains, channels))
        self.code: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.code @ self.weight, self.code @ self.bias
        return self.norm(x) * scale[:, :, None, None] + shift[:, :, None, None]


def _conditioned(module: nn.Module, domains: int) -> list[DomainNorm]:
    """Every InstanceNorm2d under `module` replaced by a DomainNorm; the new modules."""
    out = []
    for name, child in module.named_children():
        if isinstance(child, nn.InstanceNorm2d):
            setattr(module, name, DomainNorm(child.num_features, domains))
            out.append(getattr(module, name))
        else:
            out += _conditioned(child, domains)
    return out


class StarGenerator(nn.Module):
    def __init__(self, channels: int, domains: int, width: int, blocks: int):
        super().__init__()
        self.domains = domains
        self.net = ResnetGenerator(channels + domains, channels, width, blocks)
        self._norms = _conditioned(self.net, domains)

    def forward(self, image: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """`image` [B, C, H, W] in [-1, 1], `domain` int64 [B]: the images translated into those domains."""
        codes = torch.arange(self.domains, device=domain.device)
        one_hot = (domain.reshape(-1, 1) == codes.reshape(1, -1)).to(image.dtype)
        for norm in self._norms:
            norm.code = one_hot
        tiled = one_hot.reshape(-1, self.domains, 1, 1).expand(-1, -1, image.shape[2], image.shape[3])
        return self.net(torch.cat([image, tiled], 1))


class StarDiscriminator(nn.Module):
    """`projection` adds a projection term (Miyato & Koyama 2018) to the real/fake head: the patch score
    plus the inner product of each patch's features with the claimed domain's embedding, so the head
    judges "a real image *of this domain*?" rather than "a real image of any domain?"."""

    def __init__(self, size: int, channels: int, domains: int, width: int, projection: bool = False):
        super().__init__()
        n = max(1, int(math.log2(size)) - 2)  # down to 4 x 4 (16 px: two halvings)
        layers, c = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.01)], width
        for _ in range(1, n):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.01)]
            c *= 2
        self.body = nn.Sequential(*layers)
        self.patch = nn.Conv2d(c, 1, 3, 1, 1, bias=False)
        self.domain = nn.Conv2d(c, domains, size >> n, bias=False)
        self.embed = nn.Embedding(domains, c) if projection else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)  # starts as the plain head; learns what each domain adds

    def forward(self, x: torch.Tensor, domain: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(patch scores [B, 1, h, w], domain logits [B, domains]); `domain` is the claimed domain of each
        image, which a projection head needs."""
        h = self.body(x)
        score = self.patch(h)
        if self.embed is not None:
            if domain is None:
                raise ValueError("a projection discriminator needs each image's claimed domain")
            score = score + (self.embed(domain)[:, :, None, None] * h).sum(1, keepdim=True)
        return score, self.domain(h).flatten(1)
