"""DDPM training (Ho et al. 2020) on diffusers' UNet2DModel and schedulers, with EMA and CFG dropout.

Training uses DDPMScheduler's forward process; sampling during training and for evaluation uses
DDIM (eta = 0) on the same noise schedule, 50 steps by default, which is what makes evaluating
1000+ samples affordable on a CPU.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from gen.nets.components import is_conditional
from gen.nets.families.ddpm import PREDICTIONS, SCHEDULES, build_denoiser_unet, noise_scheduler
from gen.trainkit.trainer import Trainer


class DdpmTrainer(Trainer):
    SAMPLED = {"ema": "unet"}  # what the run ships

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        for key, allowed in (("schedule", SCHEDULES), ("prediction", PREDICTIONS)):
            if c[key] not in allowed:
                raise ValueError(f"unknown {key} {c[key]!r}; choose one of {', '.join(allowed)}")
        self.num_classes = c["num_classes"] if is_conditional(c) else 0
        self.unet = build_denoiser_unet(c)
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        self.scheduler = noise_scheduler(c)
        self.modules = {"unet": self.unet, "ema": self.ema}
        opt = torch.optim.AdamW(self.unet.parameters(), c["lr"], weight_decay=0.0)
        self.optimizers = {"unet": opt}

    def _lr(self, step: int) -> float:
        return self.config["lr"] * min(1.0, (step + 1) / max(1, self.config["warmup"]))

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        c = self.config
        x, y = batch(g)
        t = torch.randint(0, c["timesteps"], (len(x),), generator=g)
        noise = torch.randn(x.shape, generator=g)
        x_t = self.scheduler.add_noise(x, noise, t)
        target = noise if c["prediction"] == "epsilon" else self.scheduler.get_velocity(x, noise, t)
        labels = None
        if self.num_classes:
            drop = torch.rand(len(x), generator=g) < c["label_dropout"]
            labels = torch.where(drop, torch.full_like(y, self.num_classes), y)
        self.unet.train()
        loss = F.mse_loss(self.unet(x_t, t, class_labels=labels).sample, target)
        self.optimize(loss, step)
        return {"loss": loss.item()}

    def optimize(self, loss, step: int) -> None:
        """One AdamW step (warm-up learning rate, gradient norm clipped to 1) and the EMA update."""
        opt = self.optimizers["unet"]
        for group in opt.param_groups:
            group["lr"] = self._lr(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
        opt.step()
        self._update_ema(step)

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        decay = min(self.config["ema_decay"], (1 + step) / (10 + step))
        ema, live = list(self.ema.parameters()), list(self.unet.parameters())
        torch._foreach_lerp_(ema, live, 1.0 - decay)


    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, steps: int | None = None, guidance: float | None = None, **_):
        """`sampling_scheduler()` (DDIM, eta = 0) from the EMA weights; guidance w mixes
        eps_u + w (eps_c - eps_u) in one batch."""
        c = self.config
        w = c["guidance"] if guidance is None else guidance
        sched = self.sampling_scheduler()
        sched.set_timesteps(steps or c["sample_steps"])
        net = self.ema.eval()
        x = torch.randn(n, c["channels"], c["image_size"], c["image_size"], generator=g)
        guided = self.num_classes and labels is not None and w != 1.0
        if self.num_classes and labels is None:
            labels = torch.full((n,), self.num_classes, dtype=torch.long)  # unconditional draw
        for t in sched.timesteps:
            tt = torch.full((n,), int(t), dtype=torch.long)
            if guided:
                null = torch.full_like(labels, self.num_classes)
                out_c, out_u = net(torch.cat([x, x]), torch.cat([tt, tt]), class_labels=torch.cat([labels, null])).sample.chunk(2)
                out = out_u + w * (out_c - out_u)
            else:
                out = net(x, tt, class_labels=labels).sample
            x = sched.step(out, t, x, generator=g).prev_sample  # a stochastic scheduler's noise: from g
        return x.clamp(-1.0, 1.0)

    def sampling_scheduler(self):
        """The diffusers scheduler sample grids use: DDIM on the run's schedule, "trailing" spacing."""
        from diffusers import DDIMScheduler

        return DDIMScheduler.from_config(self.scheduler.config, timestep_spacing="trailing")
