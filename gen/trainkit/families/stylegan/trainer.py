"""StyleGAN training (StyleGAN2's recipe, small): the non-saturating logistic loss, R1 on real images
applied lazily (every `r1_every` steps at `r1_every` x the weight, as the paper does to save three
quarters of its cost), style-mixing regularisation (90% of batches take two z's and cross over at a
random layer, so layers learn to work with each other's styles), and an EMA copy of the generator
that is what gets sampled and exported. Adam lr 2e-3 (0.0025 in the paper) with betas (0, 0.99).

`--progressive` grows the output from 4 x 4 to the full size over the first half of the steps
(ProGAN's schedule, fade-ins included; see gen.nets.stylegan), then trains at full size. The
schedule is a function of the step, so `--resume` replays it exactly.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from gen.nets.stylegan import StyleDiscriminator, StyleGenerator, resolutions
from gen.trainkit.trainer import Trainer

MIX_PROBABILITY = 0.9  # style mixing regularisation (Karras et al. 2019, section 3.1)


def build_generator(c: dict) -> StyleGenerator:
    return StyleGenerator(c["image_size"], c["channels"], c["z_dim"], c["w_dim"], c["width"], c["mapping_layers"])


def fade_schedule(step: int, steps: int, sizes: list[int], progressive: bool) -> list[float]:
    """Each resolution's share at `step`: with progressive growing, the first half of training is split
    evenly between the resolutions after 4 x 4, each stable at the one below for half its span and
    fading in over the other half; without it, everything at 1."""
    if not progressive or len(sizes) == 1:
        return [1.0] * len(sizes)
    span = (steps / 2) / (len(sizes) - 1)
    fade = [1.0]
    for k in range(1, len(sizes)):
        start = (k - 1) * span + span / 2
        fade.append(min(1.0, max(0.0, (step - start) / (span / 2))))
    return fade


def blur_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Real images at `size` (box-filtered), brought back to full size the way the generator upsamples."""
    full = x.shape[-1]
    y = F.adaptive_avg_pool2d(x, size)
    while y.shape[-1] < full:
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
    return y


class StyleGanTrainer(Trainer):
    SAMPLED = {"G_ema": "generator"}  # what the run ships

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        self.sizes = resolutions(c["image_size"])
        self.G = build_generator(c)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.D = StyleDiscriminator(c["image_size"], c["channels"], c["width"])
        self.modules = {"generator": self.G, "generator_ema": self.G_ema, "discriminator": self.D}
        betas = (0.0, 0.99)
        self.optimizers = {"generator": torch.optim.Adam(self.G.parameters(), c["lr"], betas=betas),
                           "discriminator": torch.optim.Adam(self.D.parameters(), c["lr"], betas=betas)}

    def _ws(self, n: int, g: torch.Generator) -> torch.Tensor:
        """Training styles: one w per image, or two crossed over at a random layer (style mixing)."""
        c, num = self.config, self.G.num_ws
        w = self.G.mapping(torch.randn(n, c["z_dim"], generator=g))
        ws = w[:, None].repeat(1, num, 1)
        if float(torch.rand((), generator=g)) < MIX_PROBABILITY:
            w2 = self.G.mapping(torch.randn(n, c["z_dim"], generator=g))
            cut = int(torch.randint(1, num, (), generator=g))
            ws = torch.cat([ws[:, :cut], w2[:, None].expand(-1, num - cut, -1)], 1)
        return ws

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        c = self.config
        fade = fade_schedule(step, c["steps"], self.sizes, c["progressive"])
        grown = [s for s, f in zip(self.sizes, fade) if f > 0]
        real, _ = batch(g)
        if len(grown) < len(self.sizes) or fade[len(grown) - 1] < 1:  # reals at the generator's current resolution
            alpha = fade[len(grown) - 1]
            lower = blur_to(real, grown[-2]) if len(grown) > 1 else blur_to(real, grown[-1])
            real = torch.lerp(lower, blur_to(real, grown[-1]), alpha)
        fade_t = torch.tensor(fade)
        self.G.train(), self.D.train()

        # discriminator: logistic loss, plus lazy R1 on the reals
        with torch.no_grad():
            fake = self.G.synthesis(self._ws(len(real), g), fade_t, random_noise=g)
        d_loss = F.softplus(self.D(fake)).mean() + F.softplus(-self.D(real)).mean()
        r1 = torch.zeros(())
        if step % c["r1_every"] == 0 and c["r1_gamma"] > 0:
            real_r = real.detach().requires_grad_(True)
            grad, = torch.autograd.grad(self.D(real_r).sum(), real_r, create_graph=True)
            r1 = grad.pow(2).sum([1, 2, 3]).mean()
            d_loss = d_loss + c["r1_gamma"] / 2 * r1 * c["r1_every"]
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()

        # generator: non-saturating loss
        fake = self.G.synthesis(self._ws(len(real), g), fade_t, random_noise=g)
        g_loss = F.softplus(-self.D(fake)).mean()
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        self._update_ema()
        return {"loss_d": d_loss.item(), "loss_g": g_loss.item(), "r1": r1.item(), "resolution": float(grown[-1]),
                "fade": fade[len(grown) - 1]}

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = self.config["ema_beta"]
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):  # w_avg and the constant noise
            b_ema.copy_(b)


    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, psi: float = 1.0, **_) -> torch.Tensor:
        self.G_ema.eval()
        return self.G_ema(torch.randn(n, self.config["z_dim"], generator=g), psi)
