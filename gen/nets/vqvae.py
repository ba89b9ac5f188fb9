"""VQ-VAE (van den Oord et al. 2017) with an EMA codebook, and the autoregressive prior over its codes.

The encoder halves the image down to a code grid (8 x 8 digits -> 4 x 4), each cell a D-dim vector
snapped to its nearest of K codebook entries; the decoder mirrors the encoder. Gradients pass the
snap by the straight-through estimator; the encoder is held near its codes by the commitment loss.
The codebook is not learnt by gradient but as an exponential moving average of the encoder outputs
assigned to each code (the paper's appendix, Razavi et al. 2019), which trains faster and steadier,
and a code that no vector has chosen for a while is restarted on a random encoder output from the
batch (dead-code restart, as in Jukebox and most practical VQ-VAEs), so the whole codebook is used.

The prior is a small causal transformer (nanoGPT-style blocks) over the grid in raster order with a
start token; it predicts the next code's logits. Written out (no nn.MultiheadAttention) so its ONNX
graph is plain MatMul/Softmax and runs the same on every backend.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gen.errors import GenError


def _stages(image_size: int, grid: int) -> int:
    n = int(round(math.log2(image_size / grid)))
    if n < 1 or image_size != grid * 2**n:
        raise ValueError(f"the code grid ({grid}) must be the image size ({image_size}) halved 1 or more times")
    return n


class Encoder(nn.Module):
    def __init__(self, channels: int, width: int, code_dim: int, stages: int):
        super().__init__()
        layers, ch = [nn.Conv2d(channels, width, 3, 1, 1), nn.SiLU()], width
        for _ in range(stages):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.SiLU()]
            ch *= 2
        layers += [nn.Conv2d(ch, ch, 3, 1, 1), nn.SiLU(), nn.Conv2d(ch, code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, channels: int, width: int, code_dim: int, stages: int):
        super().__init__()
        ch = width * 2**stages
        layers = [nn.Conv2d(code_dim, ch, 3, 1, 1), nn.SiLU(), nn.Conv2d(ch, ch, 3, 1, 1), nn.SiLU()]
        for _ in range(stages):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.SiLU()]
            ch //= 2
        layers += [nn.Conv2d(ch, channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class EmaCodebook(nn.Module):
    def __init__(self, size: int, dim: int, decay: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.decay, self.eps = decay, eps
        embedding = torch.randn(size, dim) * 0.1
        self.register_buffer("embedding", embedding)
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("embedding_sum", embedding.clone())

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code per grid cell: z [B, D, H, W] -> int64 [B, H, W]."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        d = (flat * flat).sum(1, keepdim=True) - 2 * flat @ self.embedding.t() + (self.embedding ** 2).sum(1)[None]
        return d.argmin(1).view(z.shape[0], z.shape[2], z.shape[3])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """int64 [B, H, W] -> code vectors [B, D, H, W]."""
        return F.embedding(codes, self.embedding).permute(0, 3, 1, 2)

    @torch.no_grad()
    def update(self, z: torch.Tensor, codes: torch.Tensor, g: torch.Generator, restart_below: float) -> int:
        """One EMA step towards the mean of the vectors each code was given; codes whose average use
        fell below `restart_below` vectors per batch are moved onto random vectors of this batch.
        Returns how many were restarted."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        onehot = F.one_hot(codes.reshape(-1), len(self.embedding)).type(flat.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embedding_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + len(self.embedding) * self.eps) * n  # Laplace
        self.embedding.copy_(self.embedding_sum / smoothed[:, None])
        dead = self.cluster_size < restart_below
        count = int(dead.sum())
        if count:
            picks = flat[torch.randint(len(flat), (count,), generator=g)]
            self.embedding[dead] = picks
            self.embedding_sum[dead] = picks
            self.cluster_size[dead] = 1.0
        return count


class VQVAE(nn.Module):
    def __init__(self, image_size: int, channels: int, grid: int = 4, codebook_size: int = 64, code_dim: int = 16,
                 width: int = 32):
        super().__init__()
        stages = _stages(image_size, grid)
        self.encoder = Encoder(channels, width, code_dim, stages)
        self.quantizer = EmaCodebook(codebook_size, code_dim)
        self.decoder = Decoder(channels, width, code_dim, stages)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> code indices [B, H, W]."""
        return self.quantizer.indices(self.encoder(x))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(codes))


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, length: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))
        self.register_buffer("mask", torch.tril(torch.ones(length, length, dtype=torch.bool)), persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in self.qkv(x).split(d, 2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, length: int, dropout: float = 0.0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, length, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CodePrior(nn.Module):
    """p(code_i | codes before i): tokens [B, T] (the start token K, then codes 0..T-2) -> logits
    [B, T, K], those at position i for code i. Dropout (residual paths) only while training."""

    def __init__(self, codebook_size: int, length: int, dim: int = 128, layers: int = 4, heads: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        self.length = length  # grid cells
        self.token = nn.Embedding(codebook_size + 1, dim)
        self.position = nn.Parameter(torch.zeros(1, length, dim))
        self.blocks = nn.Sequential(*(Block(dim, heads, length, dropout) for _ in range(layers)))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token(tokens) + self.position[:, : tokens.shape[1]]
        return self.head(self.ln(self.blocks(x)))


def build_vqvae(c: dict) -> VQVAE:
    """The VQ-VAE of a run's config."""
    return VQVAE(c["image_size"], c["channels"], c["grid"], c["codebook_size"], c["code_dim"], c["width"])


def build_prior(c: dict) -> CodePrior:
    """The prior of a prior run's config (gen.trainkit.families.vqvae.prior)."""
    return CodePrior(c["codebook_size"], c["grid"] ** 2, c["prior_dim"], c["prior_layers"], c["prior_heads"],
                     c.get("prior_dropout", 0.0))


def codebook_hash(tensors: dict) -> str:
    """A short hash of the codebook in a run's weights: what a prior was trained on."""
    book = tensors.get("model.vqvae.quantizer.embedding")
    if book is None:
        raise GenError("these weights hold no VQ-VAE codebook (model.vqvae.quantizer.embedding)")
    return hashlib.sha256(np.ascontiguousarray(book.float().numpy()).tobytes()).hexdigest()[:16]


def check_codebook(c: dict, tensors: dict, where: str) -> None:
    """Refuse weights whose codebook is not the one the prior of config `c` was trained on."""
    found = codebook_hash(tensors)
    if found != c["codebook_sha256"]:
        raise GenError(f"{where}: the prior was trained on codebook {c['codebook_sha256']} but the VQ-VAE weights hold "
                       f"codebook {found}; its codes would decode to the wrong images. Retrain the prior on this VQ-VAE "
                       "(gen train vqvae-prior RUN)")
