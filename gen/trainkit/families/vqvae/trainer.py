"""VQ-VAE training, then its prior (`gen train vqvae`, `gen train vqvae-prior RUN`).

Stage 1 (this Trainer): MSE reconstruction + beta x commitment (beta 0.25, the paper's), the codebook
by EMA (decay 0.99) with dead-code restarts; logs the batch's codebook perplexity (exp of the code
usage entropy: K when every code is used equally) and how many codes were restarted.
Stage 2 (`STAGES["prior"]`, gen.trainkit.families.vqvae.prior): the frozen VQ-VAE encodes each batch
and a causal transformer learns the codes' distribution by next-code cross entropy.

Sample grids: stage 1 shows held-out images over their reconstructions (rows of 8, alternating);
stage 2 shows samples from the prior.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.vqvae import build_vqvae
from gen.trainkit.trainer import Trainer
from gen.trainkit.grids import alternating_rows

GRID_IMAGES = 32  # held-out images in a stage-1 grid, each above its reconstruction


def perplexity(codes: torch.Tensor, size: int) -> float:
    p = torch.bincount(codes.reshape(-1), minlength=size).double()
    p = p / p.sum()
    return float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))


class VqVaeTrainer(Trainer):
    SAMPLED = {"vqvae": "model.vqvae"}  # what the run ships

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        if c["grid"] < 1 or c["grid"] >= c["image_size"]:
            raise ValueError(f"--grid must be between 1 and the image size halved ({c['image_size'] // 2}), got {c['grid']}")
        if not 0 < c["ema_decay"] < 1:
            raise ValueError(f"--ema-decay must be in (0, 1), got {c['ema_decay']}")
        self.vqvae = build_vqvae(c)
        self.vqvae.quantizer.decay = c["ema_decay"]
        self.modules = {"vqvae": self.vqvae}
        # the codebook is an EMA buffer, not a parameter: the optimizer sees the encoder and decoder
        self.optimizers = {"vqvae": torch.optim.Adam(self.vqvae.parameters(), c["lr"])}
        self.grid_images = None

    def attach_data(self, data) -> None:
        self.grid_images = torch.from_numpy(data.test_x if len(data.test_x) else data.train_x)[:GRID_IMAGES]

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        x, _ = batch(g)
        m = self.vqvae.train()
        z = m.encoder(x)
        codes = m.quantizer.indices(z)
        q = m.quantizer.lookup(codes)
        recon = m.decoder(z + (q - z).detach())  # straight-through: the decoder's gradient goes to z
        mse = F.mse_loss(recon, x)
        commitment = F.mse_loss(z, q.detach())
        loss = mse + self.config["commitment"] * commitment
        self.optimizers["vqvae"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["vqvae"].step()
        restarted = m.quantizer.update(z.detach(), codes, g, self.config["dead_code_threshold"])
        return {"loss": loss.item(), "mse": mse.item(), "commitment": commitment.item(),
                "perplexity": perplexity(codes, len(m.quantizer.embedding)), "restarted": float(restarted)}


    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, **_) -> torch.Tensor:
        """No prior yet: rows of held-out images over their reconstructions."""
        if self.grid_images is None:
            raise ValueError("a VQ-VAE's grid shows reconstructions: attach_data() first")
        self.vqvae.eval()
        x = self.grid_images
        recon = self.vqvae.decode(self.vqvae.encode(x))
        return alternating_rows(x, recon)
