"""VAE training: Bernoulli likelihood plus beta-weighted KL (beta = 1 is the plain ELBO)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.vae import VAE, gaussian_kl
from gen.trainkit.trainer import Trainer


class VaeTrainer(Trainer):
    SAMPLED = {"vae": "vae"}  # what the run ships
    net_class = VAE

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        self.vae = self.net_class(c["image_size"], c["channels"], c["latent_dim"], c["width"])
        self.modules = {"vae": self.vae}
        self.optimizers = {"vae": torch.optim.Adam(self.vae.parameters(), c["lr"])}

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        x, _ = batch(g)
        self.vae.train()
        mu, logvar = self.vae.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g)
        logits = self.vae.decode_logits(z)
        recon = F.binary_cross_entropy_with_logits(logits, (x + 1.0) / 2.0, reduction="none").flatten(1).sum(1)
        kl = gaussian_kl(mu, logvar)
        loss = (recon + self.config["beta"] * kl).mean()
        self.optimizers["vae"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["vae"].step()
        return {"loss": loss.item(), "recon": recon.mean().item(), "kl": kl.mean().item()}


    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, **_) -> torch.Tensor:
        self.vae.eval()
        return self.vae.decode(torch.randn(n, self.config["latent_dim"], generator=g))
