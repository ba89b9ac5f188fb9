"""SRGAN-style training (Ledig et al. 2017): the generator reads the sharp target shrunk `scale` times
(bicubic, .degrade) and is trained on a content loss (--loss: L1, the MS-SSIM + L1 mix, or L1 plus a
feature distance) plus `adv_weight` times the non-saturating GAN loss of a discriminator that tells
sharp crops from super-resolved ones (SRGAN's 1e-3 with the perceptual loss; 0, SRResNet, otherwise:
the adversarial texture costs PSNR). Adam at 2e-4, betas 0.9 / 0.999 as the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.nets.srgan import SRDiscriminator, SRGenerator
from gen.trainkit.families.srgan import losses
from gen.trainkit.families.srgan.degrade import shrink
from gen.trainkit.trainer import Trainer

GRID_PAIRS = 16  # held-out crops in each sample grid: rows of input | bicubic | srgan | target


class SrganTrainer(Trainer):
    SAMPLED = {"G": "generator"}

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        if not c.get("input_channels"):
            raise ValueError("srgan trains on paired data (it reads the targets): --data sr4x, a folder with A/ and B/, "
                             "or side-by-side pairs (--side-by-side)")
        if c["image_size"] // c["scale"] < 4:
            raise ValueError(f"srgan needs images of at least {4 * c['scale']} px at {c['scale']}x; these are "
                             f"{c['image_size']} px")
        self.G = SRGenerator(c["channels"], c["width"], c["blocks"], c["scale"])
        self.modules = {"generator": self.G}
        if c["adv_weight"] > 0:
            self.D = SRDiscriminator(c["image_size"], c["channels"])
            self.modules["discriminator"] = self.D
        self.optimizers = {name: torch.optim.Adam(m.parameters(), c["lr"], betas=(0.9, 0.999))
                           for name, m in self.modules.items()}
        self.features = None
        self.grid = None

    def attach_data(self, data) -> None:
        k, c = data.input_channels, self.config
        held = data.test_x if len(data.test_x) else data.train_x
        self.grid = (torch.from_numpy(held[:GRID_PAIRS, :k]), torch.from_numpy(held[:GRID_PAIRS, k:]))
        if c["loss"] == "perceptual":
            from gen.trainkit.families.srgan.features import (
                default_features,
                load_features,
            )

            self.features = load_features(c["features"], c["channels"]) if c.get("features") else default_features(data)

    def pair(self, batch, g):
        """(low-resolution input, sharp target) of the step's batch."""
        target = batch(g)[0][:, self.config["input_channels"]:]
        return torch.from_numpy(shrink(target.numpy(), self.config["scale"])), target

    def content(self, sr, hr) -> dict:
        l1 = (sr - hr).abs().mean()
        loss = self.config["loss"]
        if loss == "l1":
            return {"l1": l1}
        if loss == "msssim-l1":
            return {"l1": l1, "msssim_l1": losses.msssim_l1(sr, hr)}
        feat = losses.feature_distance(self.features, sr, hr)
        return {"l1": l1, "feature": feat, "perceptual": l1 + self.config["perceptual_weight"] * feat}

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        c = self.config
        self.G.train()
        lr, hr = self.pair(batch, g)
        sr = self.G(lr)
        logs = {}
        if c["adv_weight"] > 0:
            self.D.train()
            d_loss = 0.5 * (F.softplus(-self.D(hr)).mean() + F.softplus(self.D(sr.detach())).mean())
            self.optimizers["discriminator"].zero_grad(set_to_none=True)
            d_loss.backward()
            self.optimizers["discriminator"].step()
            logs["loss_d"] = d_loss.item()
        terms = self.content(sr, hr)
        g_loss = terms["msssim_l1" if c["loss"] == "msssim-l1" else c["loss"]]
        if c["adv_weight"] > 0:
            terms["adv"] = F.softplus(-self.D(sr)).mean()
            g_loss = g_loss + c["adv_weight"] * terms["adv"]
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {**logs, **{k: v.item() for k, v in terms.items()}}

    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, **_) -> torch.Tensor:
        """The grid: rows of 8 held-out crops as the low-resolution input (blown up by repeating pixels),
        its bicubic upscale, the generator's and the sharp target."""
        if self.grid is None:
            raise ValueError("srgan samples super-resolve held-out crops: attach_data() first")
        bicubic, hr = self.grid
        lr = torch.from_numpy(shrink(hr.numpy(), self.config["scale"]))
        self.G.eval()
        sr = self.G(lr)
        nearest = lr.repeat_interleave(self.config["scale"], 2).repeat_interleave(self.config["scale"], 3)
        show = bicubic if bicubic.shape[1] == hr.shape[1] else F.interpolate(lr, scale_factor=self.config["scale"],
                                                                            mode="bicubic").clamp(-1, 1)
        rows = []
        for i in range(0, len(hr), 8):
            rows += [nearest[i:i + 8], show[i:i + 8], sr[i:i + 8], hr[i:i + 8]]
        return torch.cat(rows)
