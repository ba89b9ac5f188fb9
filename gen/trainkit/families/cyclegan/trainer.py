"""CycleGAN training (Zhu et al. 2017): two generators, A -> B and B -> A, learnt from unpaired domains.

Each generator fools its domain's discriminator under the least-squares GAN loss (LSGAN, as the
paper uses), while a cycle term (weight 10, the paper's lambda) makes A -> B -> A return the input,
and an identity term (0.5 x the cycle weight, the paper's lambda_identity = 0.5) asks a generator to
leave an image of its own target domain alone, which keeps colours and backgrounds. Adam at 2e-4,
betas (0.5, 0.999), constant for the first half of the steps and then decayed linearly to zero (the
paper's 100 + 100 epochs). The discriminators are fed from a pool of the last 50 fakes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.cyclegan import CycleGenerators, ImagePool
from gen.nets.pix2pix import PatchDiscriminator
from gen.trainkit.trainer import Trainer

GRID_IMAGES = 8  # held-out images per domain in each sample grid: rows of input | translated | cycled back


class CycleGANTrainer(Trainer):
    SAMPLED = {"G": "generators"}  # what the run ships

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        shape = (c["channels"], c["image_size"], c["image_size"])
        self.G = CycleGenerators(c["channels"], c["width"], c["blocks"])
        self.D_a = PatchDiscriminator(c["image_size"], c["channels"], c["width"])
        self.D_b = PatchDiscriminator(c["image_size"], c["channels"], c["width"])
        self.pool_a, self.pool_b = ImagePool(c["pool_size"], shape), ImagePool(c["pool_size"], shape)
        self.modules = {"generators": self.G, "discriminator_a": self.D_a, "discriminator_b": self.D_b,
                        "pool_a": self.pool_a, "pool_b": self.pool_b}
        betas = (0.5, 0.999)
        self.optimizers = {
            "generators": torch.optim.Adam(self.G.parameters(), c["lr"], betas=betas),
            "discriminators": torch.optim.Adam([*self.D_a.parameters(), *self.D_b.parameters()], c["lr"], betas=betas),
        }
        self.train_b = self.grid_a = self.grid_b = None

    def attach_data(self, data) -> None:
        b = data.domain_b
        self.train_b = torch.from_numpy(b.train_x)
        self.grid_a = torch.from_numpy(data.test_x if len(data.test_x) else data.train_x)[:GRID_IMAGES]
        self.grid_b = torch.from_numpy(b.test_x if len(b.test_x) else b.train_x)[:GRID_IMAGES]

    def _lr(self, step: int) -> float:
        """Constant for the first half, then linearly to zero: a function of the step, so resume agrees."""
        steps = self.config["steps"]
        return self.config["lr"] * min(1.0, 2.0 * (steps - step) / steps)

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        if self.train_b is None:
            raise ValueError("CycleGAN trains on two domains: attach_data() first")
        c = self.config
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self._lr(step)
        self.G.train(), self.D_a.train(), self.D_b.train()
        real_a = batch(g)[0]
        real_b = self.train_b[torch.randint(len(self.train_b), (len(real_a),), generator=g)]

        fake_b, fake_a = self.G.ab(real_a), self.G.ba(real_b)
        cycle = F.l1_loss(self.G.ba(fake_b), real_a) + F.l1_loss(self.G.ab(fake_a), real_b)
        identity = F.l1_loss(self.G.ab(real_b), real_b) + F.l1_loss(self.G.ba(real_a), real_a)
        gan = _lsgan(self.D_b(fake_b), 1.0) + _lsgan(self.D_a(fake_a), 1.0)
        g_loss = gan + c["cycle_weight"] * cycle + c["cycle_weight"] * c["identity_weight"] * identity
        self.optimizers["generators"].zero_grad(set_to_none=True)
        g_loss.backward()  # leaves gradients in the discriminators too; their zero_grad below drops them
        self.optimizers["generators"].step()

        pooled_a, pooled_b = self.pool_a.query(fake_a, g), self.pool_b.query(fake_b, g)
        d_loss = 0.5 * (_lsgan(self.D_a(real_a), 1.0) + _lsgan(self.D_a(pooled_a), 0.0)
                        + _lsgan(self.D_b(real_b), 1.0) + _lsgan(self.D_b(pooled_b), 0.0))
        self.optimizers["discriminators"].zero_grad(set_to_none=True)
        d_loss.backward()  # the pooled fakes are detached: nothing flows back into the generators
        self.optimizers["discriminators"].step()
        return {"loss_d": d_loss.item(), "loss_g_gan": gan.item(), "cycle_l1": cycle.item() / 2,
                "identity_l1": identity.item() / 2}


    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, **_) -> torch.Tensor:
        """The grid: held-out A, A -> B, A -> B -> A, then held-out B, B -> A, B -> A -> B (rows of 8)."""
        if self.grid_a is None:
            raise ValueError("CycleGAN samples translate held-out images: attach_data() first")
        self.G.eval()
        rows = []
        for x, there, back in ((self.grid_a, self.G.ab, self.G.ba), (self.grid_b, self.G.ba, self.G.ab)):
            y = there(x)
            rows += [x, y, back(y)]
        return torch.cat(rows)


def _lsgan(scores: torch.Tensor, target: float) -> torch.Tensor:
    return ((scores - target) ** 2).mean()
