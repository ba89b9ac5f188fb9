"""What every few-step student shares: a frozen teacher, the teacher's noise schedule as exact
alpha-bar values (index -1 is clean data), guided teacher predictions, and the DDIM step."""

from __future__ import annotations

import copy

import numpy as np
import torch

from gen.nets.components import sub_state
from gen.nets.families.ddpm import scheduler_config
from gen.runtime.schedulers import alphas_cumprod
from gen.trainkit.families.ddpm.trainer import DdpmTrainer

GRID_STEPS = (1, 2, 4, 8)  # a student's extra sample grids (samples_<k>steps.png): few-step quality at a glance


def x0_eps(out, z, alpha, sigma, prediction: str):
    """(x0, eps) implied by a network output at z = alpha x0 + sigma eps ("epsilon" or "v" output)."""
    if prediction == "epsilon":
        return (z - sigma * out) / alpha, out
    return alpha * z - sigma * out, alpha * out + sigma * z


class StudentBase(DdpmTrainer):
    """A v-prediction DDPM trainer (EMA, AdamW, DDIM sample grids) with a frozen teacher."""

    @property
    def grid_steps(self) -> tuple[int, ...]:
        """GRID_STEPS up to the student's own step count, and that count (a 3-step student: 1, 2, 3)."""
        n = self.config["sample_steps"]
        return tuple(sorted({k for k in GRID_STEPS if k <= n} | {n}))

    def __init__(self, config: dict):
        super().__init__(config)
        self.d = config["distill"]
        self.teacher = copy.deepcopy(self.unet).requires_grad_(False).eval()
        self.modules["teacher"] = self.teacher
        s = scheduler_config(config)
        ab = alphas_cumprod(s["num_train_timesteps"], s["beta_schedule"], s["beta_start"], s["beta_end"])
        self.alpha_bar = torch.tensor(np.append(ab, 1.0), dtype=torch.float64)
        self.T = s["num_train_timesteps"]

    def initialize(self) -> None:
        """Teacher, student and EMA all start as the teacher run's sampling (EMA) weights."""
        from gen.trainkit.rundir import RunDir

        state = sub_state(RunDir(self.d["teacher"]).load_weights(), "unet")
        for m in self.start_as_teacher():
            m.load_state_dict(state)

    def start_as_teacher(self):
        return self.teacher, self.unet, self.ema

    def scalings(self, t: torch.Tensor):
        """(alpha, sigma) of z_t = alpha x0 + sigma eps, shaped to broadcast over images; t = -1 is clean."""
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return ab.sqrt().float(), (1 - ab).sqrt().float()

    def predict(self, net, z, t, labels, prediction: str, guidance: float = 1.0):
        """(x0, eps) from `net` at (z, t); a conditional teacher is guided in one batched call."""
        a, s = self.scalings(t)
        tt = t.clamp(min=0)
        if guidance != 1.0 and labels is not None:
            null = torch.full_like(labels, self.num_classes)
            out_c, out_u = net(torch.cat([z, z]), torch.cat([tt, tt]), class_labels=torch.cat([labels, null])).sample.chunk(2)
            out = out_u + guidance * (out_c - out_u)
        else:
            out = net(z, tt, class_labels=labels).sample
        return x0_eps(out, z, a, s, prediction)

    def teacher_x0_eps(self, z, t, labels, first: bool = True):
        """The teacher's clipped x0 and the eps consistent with it (as DDIM with clip_sample does)."""
        prediction = self.d["teacher_prediction"] if first else "v"
        guidance = self.d["teacher_guidance"] if first else 1.0
        x0, _ = self.predict(self.teacher, z, t, labels, prediction, guidance)
        x0 = x0.clamp(-1, 1)
        a, s = self.scalings(t)
        return x0, (z - a * x0) / s

    def ddim(self, x0, eps, t_next):
        a, s = self.scalings(t_next)
        return a * x0 + s * eps

    def noised(self, batch, g, starts: torch.Tensor):
        """A batch noised at start timesteps drawn uniformly from `starts`: (z, index into starts, labels)."""
        x, y = batch(g)
        i = torch.randint(0, len(starts), (len(x),), generator=g)
        a, s = self.scalings(starts[i])
        z = a * x + s * torch.randn(x.shape, generator=g)
        return z, i, (y if self.num_classes else None)
