"""Progressive distillation (Salimans & Ho 2022).

Each halving trains a student to take in one DDIM step what its teacher takes in two: from the same
noised sample z_t, the teacher's two deterministic DDIM steps t -> t' -> t'' give z_t'', and the
student is trained towards the clean image x~ whose single DDIM step t -> t'' lands exactly there,

    x~ = (z_t'' - (sigma_t'' / sigma_t) z_t) / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t),

with the loss on x0 weighted by max(SNR, 1) ("truncated SNR", the paper's choice). The student
predicts v (alpha eps - sigma x0), which stays well conditioned at t = T where an epsilon model's x0
estimate divides by alpha ~ 0; after each halving the student's EMA becomes the next teacher.
Timesteps are gen's "trailing" DDIM grid, so a student trained for N steps samples at exactly the
timesteps `Sampler(..., steps=N, scheduler="ddim")` uses.
"""

from __future__ import annotations

import numpy as np
import torch

from gen.runtime.schedulers import spaced_timesteps
from gen.trainkit.distill.base import StudentBase


class ProgressiveStudent(StudentBase):
    def stage(self, step: int) -> int:
        return min(step // self.d["steps_per_halving"], self.d["halvings"] - 1)

    def train_step(self, batch, g, step):
        d, per = self.d, self.d["steps_per_halving"]
        k = self.stage(step)
        if step > 0 and step % per == 0 and step // per < d["halvings"]:
            self.teacher.load_state_dict(self.ema.state_dict())  # the last student teaches the next
        n_student = d["start_steps"] // 2 ** (k + 1)
        grid = torch.from_numpy(np.append(spaced_timesteps(self.T, 2 * n_student, "trailing"), -1))
        z, i, labels = self.noised(batch, g, grid[0:-1:2])
        t, t1, t2 = grid[2 * i], grid[2 * i + 1], grid[2 * i + 2]
        with torch.no_grad():  # two teacher DDIM steps t -> t1 -> t2 (guidance folded into the first student)
            z1 = self.ddim(*self.teacher_x0_eps(z, t, labels, first=k == 0), t1)
            z2 = self.ddim(*self.teacher_x0_eps(z1, t1, labels, first=k == 0), t2)
            a, s = self.scalings(t)
            a2, s2 = self.scalings(t2)
            ratio = s2 / s
            target = torch.where(s2 == 0, z2, (z2 - ratio * z) / (a2 - ratio * a))
        self.unet.train()
        x0_student, _ = self.predict(self.unet, z, t, labels, "v")
        weight = torch.clamp(a * a / (s * s), min=1.0)  # truncated SNR
        loss = (weight * (x0_student - target) ** 2).mean()
        self.optimize(loss, step % per)
        return {"loss": loss.item(), "student_steps": float(n_student)}


Student = ProgressiveStudent
