"""Consistency distillation (Song et al. 2023), in the discrete form of latent consistency models
(Luo et al. 2023), so the LCM scheduler that diffusers and gen's runtime ship samples the student.

The student is f(z_t, t) = c_skip(t) z_t + c_out(t) x0(z_t, t): a v-prediction UNet's x0 estimate
with LCM's boundary scalings (sigma_data 0.5, timestep scaling 10), which make f the identity at
t = 0. Training draws t from the skip grid {k-1, 2k-1, .., T-1} (LCM's; the scheduler's
original_inference_steps = T / k), noises a batch to z_t, takes one teacher ODE step t -> t - k
(DDIM, or Heun for second order; a class-conditional teacher guided in the same call) and pulls
f(z_t, t) towards the target network's f at the landing point (at the last step, the clean
endpoint itself). The target network is an EMA of the student (decay 0.95, CD's and LCM's), separate
from the slower evaluation EMA the bundle ships. The loss is pseudo-Huber per image,
sqrt(|d|^2 + c^2) - c with c = 0.00054 sqrt(dim) (Song & Dhariwal 2023), or plain L2.
"""

from __future__ import annotations

import copy

import torch

from gen.nets.families.ddpm import scheduler_config
from gen.trainkit.distill.base import StudentBase

SIGMA_DATA = 0.5


def boundary_scalings(t: torch.Tensor, timestep_scaling: float):
    """LCMScheduler's (c_skip, c_out) at integer timesteps t, shaped to broadcast over images
    (t = -1, clean data, counts as 0); LCM-LoRA distillation uses the same ones."""
    c = t.clamp(min=0).to(torch.float64).view(-1, 1, 1, 1) * timestep_scaling
    return (SIGMA_DATA**2 / (c**2 + SIGMA_DATA**2)).float(), (c / (c**2 + SIGMA_DATA**2).sqrt()).float()


class ConsistencyStudent(StudentBase):
    def __init__(self, config: dict):
        super().__init__(config)
        self.target = copy.deepcopy(self.unet).requires_grad_(False).eval()
        self.modules["target"] = self.target
        self.skip = self.d["skip"]
        self.starts = torch.arange(self.skip - 1, self.T, self.skip)
        self.timestep_scaling = self.d["scheduler_config"]["timestep_scaling"]

    def start_as_teacher(self):
        return (*super().start_as_teacher(), self.target)

    def boundary(self, t: torch.Tensor):
        return boundary_scalings(t, self.timestep_scaling)

    def consistency(self, net, z, t, labels):
        c_skip, c_out = self.boundary(t)
        x0, _ = self.predict(net, z, t, labels, "v")
        return c_skip * z + c_out * x0

    def solve(self, z, t, t_next, labels):
        """One teacher ODE step t -> t_next (-1: to the clean endpoint, where Heun falls back to Euler)."""
        x0, eps = self.teacher_x0_eps(z, t, labels)
        euler = self.ddim(x0, eps, t_next)
        if self.d["solver"] != "heun":
            return euler
        _, eps_2 = self.teacher_x0_eps(euler, t_next.clamp(min=0), labels)
        a, s = self.scalings(t)
        a_n, s_n = self.scalings(t_next)
        # in y = z / alpha against sigma = s / alpha the ODE is dy/dsigma = eps: average the two slopes
        heun = a_n * (z / a + (s_n / a_n - s / a) * (eps + eps_2) / 2)
        return torch.where((t_next < 0).view(-1, 1, 1, 1), euler, heun)

    def train_step(self, batch, g, step):
        z, i, labels = self.noised(batch, g, self.starts)
        t = self.starts[i]
        t_next = t - self.skip  # -1 at the first grid point: the clean endpoint
        with torch.no_grad():
            landing = self.solve(z, t, t_next, labels)
            target = torch.where((t_next < 0).view(-1, 1, 1, 1), landing,
                                 self.consistency(self.target, landing, t_next, labels))
        self.unet.train()
        pred = self.consistency(self.unet, z, t, labels)
        diff = (pred - target).flatten(1)
        if self.d["loss"] == "huber":
            c = 0.00054 * diff.shape[1] ** 0.5
            loss = ((diff.pow(2).sum(1) + c * c).sqrt() - c).mean()
        else:
            loss = diff.pow(2).mean()
        self.optimize(loss, step)
        with torch.no_grad():
            torch._foreach_lerp_(list(self.target.parameters()), list(self.unet.parameters()), 1.0 - self.d["target_ema"])
        return {"loss": loss.item()}

    def sampling_scheduler(self):
        """Consistency multistep sampling: diffusers' LCMScheduler on the student's schedule."""
        from diffusers import LCMScheduler

        return LCMScheduler(**scheduler_config(self.config), **self.d["scheduler_config"])

Student = ConsistencyStudent
