"""pix2pix training (Isola et al. 2017): conditional GAN on (input, target) pairs plus an L1 term.

The discriminator sees (input, real target) against (input, generated); the generator minimises the
non-saturating GAN loss plus 100 x L1 to the target (the paper's lambda), with the paper's Adam
(lr 2e-4, betas 0.5 / 0.999). The L1 term gets the low frequencies right, the PatchGAN the texture.
For restoration tasks (residual generator) the GAN weight defaults to 0: see __init__.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.pix2pix import PatchDiscriminator, UNetGenerator, residual
from gen.trainkit.trainer import Trainer

GRID_PAIRS = 16  # held-out inputs translated in every sample grid: rows of input | output | target


class Pix2PixTrainer(Trainer):
    SAMPLED = {"G": "generator"}  # what the run ships

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        if c.get("gan_weight") is None and c.get("input_channels"):
            # restoration (the input already has the output's channels, e.g. sr4x): L1 alone by default.
            # The GAN term adds texture that PSNR counts as error; measured on sr4x, 33.58 dB without it
            # against 32.67 with it, bicubic 33.46 (docs/RESULTS.md). Elsewhere the paper's GAN + L1.
            c["gan_weight"] = 0.0 if residual(c) else 1.0
        if not c.get("input_channels"):
            raise ValueError("pix2pix trains on paired data: --data colorize, sr4x, edges, a folder with A/ and B/, "
                             "or side-by-side pairs (--side-by-side)")
        self.G = UNetGenerator(c["image_size"], c["input_channels"], c["channels"], c["width"], residual(c))
        self.D = PatchDiscriminator(c["image_size"], c["input_channels"] + c["channels"], c["width"])
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.optimizers = {name: torch.optim.Adam(m.parameters(), c["lr"], betas=(0.5, 0.999))
                           for name, m in self.modules.items()}
        self.grid_inputs = None

    def attach_data(self, data) -> None:
        x = torch.from_numpy(data.test_x if len(data.test_x) else data.train_x)[:GRID_PAIRS]
        self.grid_inputs = x

    def split(self, x: torch.Tensor):
        k = self.config["input_channels"]
        return x[:, :k], x[:, k:]

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        self.G.train(), self.D.train()
        a, b = self.split(batch(g)[0])
        # dropout draws from torch's global generator; seed it from this step's, so resume replays it
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=g)))
        fake = self.G(a)
        d_real, d_fake = self.D(a, b), self.D(a, fake.detach())
        d_loss = 0.5 * (F.softplus(-d_real).mean() + F.softplus(d_fake).mean())
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()
        gan = F.softplus(-self.D(a, fake)).mean()
        l1 = (fake - b).abs().mean()
        g_loss = self.config["gan_weight"] * gan + self.config["l1_weight"] * l1
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"loss_d": d_loss.item(), "loss_g_gan": gan.item(), "l1": l1.item()}


    @torch.no_grad()
    def translate(self, a: torch.Tensor) -> torch.Tensor:
        self.G.eval()
        return self.G(a)

    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, **_) -> torch.Tensor:
        """The grid: rows of 8 held-out inputs, their translations and their targets."""
        if self.grid_inputs is None:
            raise ValueError("pix2pix samples translate inputs: attach_data() first")
        a, b = self.split(self.grid_inputs)
        out = self.translate(a)

        def show(t):  # an input shown with the target's channels: gray repeated, or colour averaged
            if t.shape[1] == b.shape[1]:
                return t
            return t.expand(-1, b.shape[1], -1, -1) if t.shape[1] == 1 else t.mean(1, keepdim=True)

        rows = []
        for i in range(0, len(a), 8):
            rows += [show(a[i:i + 8]), out[i:i + 8], b[i:i + 8]]
        return torch.cat(rows)
