"""GAN training: DCGAN nets with BCE (non-saturating), LSGAN, WGAN-GP or hinge losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.gan import Discriminator, Generator
from gen.trainkit.trainer import Trainer

LOSSES = ("bce", "lsgan", "wgan-gp", "hinge")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, labels, eps: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)||_2 - 1)^2] on real/fake interpolates."""
    x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    out = critic(x_hat, labels)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()


def discriminator_loss(loss: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    if loss == "bce":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if loss == "lsgan":
        return 0.5 * ((d_real - 1.0).pow(2).mean() + d_fake.pow(2).mean())
    if loss == "wgan-gp":
        return d_fake.mean() - d_real.mean()
    if loss == "hinge":
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
    raise ValueError(f"unknown GAN loss {loss!r}; choose one of {', '.join(LOSSES)}")


def generator_loss(loss: str, d_fake: torch.Tensor) -> torch.Tensor:
    if loss == "bce":
        return F.softplus(-d_fake).mean()  # non-saturating: maximise log D(G(z))
    if loss == "lsgan":
        return 0.5 * (d_fake - 1.0).pow(2).mean()
    return -d_fake.mean()  # wgan-gp and hinge


def feature_matching(D, real: torch.Tensor, h_fake: torch.Tensor) -> torch.Tensor:
    """Salimans et al. 2016: || E f(x) - E f(G(z)) ||_2^2 over the discriminator's last features f (the
    squared norm, summed over features as in the paper: a mean over 2048 features is ~1e-2 beside an
    adversarial loss of ~3 and barely moved the generator); the real side is a fixed target."""
    with torch.no_grad():
        h_real = D.features(real)
    return (h_real.mean(0) - h_fake.mean(0)).pow(2).sum()


class GanTrainer(Trainer):
    SAMPLED = {"G": "generator"}  # what the run ships

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        if c["loss"] not in LOSSES:
            raise ValueError(f"unknown GAN loss {c['loss']!r}; choose one of {', '.join(LOSSES)}")
        k = c["num_classes"] if c["conditional"] else 0
        norm = {"wgan-gp": "none", "hinge": "spectral"}.get(c["loss"], "batch")
        self.G = Generator(c["image_size"], c["channels"], c["z_dim"], c["width"], k)
        self.D = Discriminator(c["image_size"], c["channels"], c["width"], k, norm)
        self.modules = {"generator": self.G, "discriminator": self.D}
        # WGAN-GP's recommended Adam (beta1 = 0, beta2 = 0.9); DCGAN's (0.5, 0.999) for the others.
        betas = (0.0, 0.9) if c["loss"] == "wgan-gp" else (0.5, 0.999)
        self.optimizers = {
            "generator": torch.optim.Adam(self.G.parameters(), c["lr"], betas=betas),
            "discriminator": torch.optim.Adam(self.D.parameters(), c["lr"], betas=betas),
        }

    def _labels(self, y):
        return y if self.config["conditional"] else None

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        c = self.config
        self.G.train(), self.D.train()
        for _ in range(c["n_critic"]):
            x, y = batch(g)
            z = torch.randn(len(x), c["z_dim"], generator=g)
            with torch.no_grad():
                fake = self.G(z, self._labels(y))
            d_loss = discriminator_loss(c["loss"], self.D(x, self._labels(y)), self.D(fake, self._labels(y)))
            if c["loss"] == "wgan-gp":
                eps = torch.rand(len(x), 1, 1, 1, generator=g)
                d_loss = d_loss + c["gp_weight"] * gradient_penalty(self.D, x, fake, self._labels(y), eps)
            self.optimizers["discriminator"].zero_grad(set_to_none=True)
            d_loss.backward()
            self.optimizers["discriminator"].step()
        z = torch.randn(len(x), c["z_dim"], generator=g)
        h_fake = self.D.features(self.G(z, self._labels(y)))
        g_loss = generator_loss(c["loss"], self.D.score(h_fake, self._labels(y)))
        logs = {"loss_d": d_loss.item(), "loss_g": g_loss.item()}
        if c.get("feature_matching"):  # runs from before the option lack the key
            fm = feature_matching(self.D, x, h_fake)
            g_loss = g_loss + c["fm_weight"] * fm
            logs["feature_matching"] = fm.item()
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return logs


    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, **_) -> torch.Tensor:
        self.G.eval()
        z = torch.randn(n, self.config["z_dim"], generator=g)
        return self.G(z, self._labels(labels))
