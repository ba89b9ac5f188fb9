"""`gen distill progressive`: few-step students by progressive distillation (Salimans & Ho 2022).

Each halving trains a student to take in one DDIM step what its teacher takes in two: from the same
noised sample z_t, the teacher's two deterministic DDIM steps t -> t' -> t'' give z_t'', and the
student is trained towards the clean image x~ whose single DDIM step t -> t'' lands exactly there,

    x~ = (z_t'' - (sigma_t'' / sigma_t) z_t) / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t),

with the loss on x0 weighted by max(SNR, 1) ("truncated SNR", the paper's choice). The student
predicts v (alpha eps - sigma x0), which stays well conditioned at t = T where an epsilon model's x0
estimate divides by alpha ~ 0; after each halving the student's EMA becomes the next teacher.
Timesteps are gen's "trailing" DDIM grid, so a student trained for N steps samples at exactly the
timesteps `Sampler(..., steps=N, scheduler="ddim")` uses. A class-conditional teacher is distilled
with its guidance folded in, so the student needs no second (unconditional) pass.

The student is a DDPM run like any other (family "ddpm", v-prediction, `sample_steps` = its step
count, plus a `distill` record), so export, the runtime, bench and serving need nothing new; its
manifest says it is a student and allows 1..2N steps.
"""

from __future__ import annotations

import copy
import functools

from gen.errors import GenError

# `gen distill progressive`'s defaults (the CLI shows them; see ProgressiveTrainer for why)
DEFAULTS = {"start_steps": 16, "halvings": 2, "steps_per_halving": 1000, "lr": 2e-4, "batch_size": 64,
            "warmup": 50, "guidance": None}  # guidance None: the teacher's own


def distill(teacher: str, out: str, options: dict, resume: bool = False, force: bool = False, progress: bool = True):
    """Distil the DDPM run `teacher` into a student run at `out` (options: DEFAULTS' keys, seed)."""
    from gen.trainkit.train import train_with

    def fresh():
        return student_config(teacher, {k: v for k, v in options.items() if v is not None})

    return train_with(out, "ddpm", fresh, {"steps": None}, resume=resume, force=force, progress=progress,
                      label="distill progressive")


def student_config(teacher_path: str, options: dict):
    from gen.fileio import check_safetensors
    from gen.trainkit.data import load_dataset
    from gen.trainkit.families import trainer_class
    from gen.trainkit.rundir import RunDir

    from gen.trainkit.defaults import LOOP

    unknown = set(options) - set(DEFAULTS) - set(LOOP)
    if unknown:
        raise GenError(f"unknown distillation options: {', '.join(sorted(unknown))}")
    teacher = RunDir(teacher_path)
    tconfig = teacher.read_config()
    if not getattr(trainer_class(tconfig["family"]), "diffusion", False):
        raise GenError(f"the teacher {teacher_path} is a {tconfig['family']} run; distillation needs a diffusion run "
                       "(gen train ddpm)")
    check_safetensors(teacher.weights_path)
    o = {**DEFAULTS, **options}
    for key in ("start_steps", "halvings", "steps_per_halving", "batch_size", "warmup"):
        if isinstance(o[key], bool) or not isinstance(o[key], int) or o[key] < 1:
            raise GenError(f"--{key.replace('_', '-')} must be a positive integer, got {o[key]!r}")
    if not (isinstance(o["lr"], (int, float)) and 0 < o["lr"] < float("inf")):
        raise GenError(f"--lr must be a positive finite number, got {o['lr']!r}")
    guidance = tconfig["guidance"] if o["guidance"] is None else o["guidance"]
    if not (isinstance(guidance, (int, float)) and 0 <= guidance < float("inf")):
        raise GenError(f"--guidance must be a finite number >= 0, got {guidance!r}")
    if guidance != 1.0 and not tconfig.get("conditional"):
        raise GenError("--guidance applies to a class-conditional teacher; this one is unconditional")
    final = o["start_steps"] / 2 ** o["halvings"]
    if final < 1 or final != int(final):
        raise GenError(f"--start-steps {o['start_steps']} cannot be halved {o['halvings']} times into whole steps; "
                       "use a power of two (16 with 2 halvings gives a 4-step student)")
    if o["start_steps"] > tconfig["timesteps"]:
        raise GenError(f"--start-steps {o['start_steps']} is more than the teacher's {tconfig['timesteps']} timesteps")
    config = {**tconfig, "prediction": "v", "steps": o["halvings"] * o["steps_per_halving"], "lr": o["lr"],
              "batch_size": o["batch_size"], "warmup": o["warmup"], "sample_steps": int(final),
              **{k: o[k] for k in LOOP if k in o},
              "distill": {"method": "progressive", "teacher": str(teacher.path.resolve()),
                          "teacher_prediction": tconfig["prediction"], "teacher_guidance": float(guidance),
                          "start_steps": o["start_steps"], "halvings": o["halvings"],
                          "steps_per_halving": o["steps_per_halving"], "steps": int(final)}}
    config["guidance"] = 1.0  # folded in: the student samples in one pass
    data = load_dataset(tconfig["data"], tconfig["image_size"], tconfig["channels"])
    return config, data


def trainer(config: dict):
    """The student's trainer: a DdpmTrainer (v-prediction, EMA, DDIM sample grids) plus a frozen teacher."""
    return _progressive_class()(config)


@functools.cache
def _progressive_class():
    """Built on first use, subclassing the DDPM trainer (which imports torch), so `gen --help`, which
    reads DEFAULTS here, stays light."""
    import numpy as np
    import torch

    from gen.nets.families.ddpm import scheduler_config
    from gen.runtime.schedulers import alphas_cumprod, spaced_timesteps
    from gen.trainkit.families.ddpm import DdpmTrainer

    class Progressive(DdpmTrainer):
        def __init__(self, config):
            super().__init__(config)
            d = config["distill"]
            self.teacher = copy.deepcopy(self.unet).requires_grad_(False).eval()
            self.modules["teacher"] = self.teacher
            s = scheduler_config(config)
            ab = alphas_cumprod(s["num_train_timesteps"], s["beta_schedule"], s["beta_start"], s["beta_end"])
            self.alpha_bar = torch.tensor(np.append(ab, 1.0), dtype=torch.float64)  # index -1: clean data
            self.d, self.T = d, s["num_train_timesteps"]

        def initialize(self):
            """Teacher, student and EMA all start as the teacher run's sampling (EMA) weights."""
            from gen.nets.components import sub_state
            from gen.trainkit.rundir import RunDir

            state = sub_state(RunDir(self.d["teacher"]).load_weights(), "unet")
            for m in (self.teacher, self.unet, self.ema):
                m.load_state_dict(state)

        def stage(self, step: int) -> int:
            return min(step // self.d["steps_per_halving"], self.d["halvings"] - 1)

        def _predict_x0(self, net, z, t, labels, prediction, guidance):
            a = self.alpha_bar[t].sqrt().view(-1, 1, 1, 1).float()
            s = (1 - self.alpha_bar[t]).sqrt().view(-1, 1, 1, 1).float()
            tt = t.clamp(min=0)
            if guidance != 1.0 and labels is not None:
                null = torch.full_like(labels, self.num_classes)
                out_c, out_u = net(torch.cat([z, z]), torch.cat([tt, tt]), class_labels=torch.cat([labels, null])).sample.chunk(2)
                out = out_u + guidance * (out_c - out_u)
            else:
                out = net(z, tt, class_labels=labels).sample
            x0 = (z - s * out) / a if prediction == "epsilon" else a * z - s * out
            return x0, a, s

        def _ddim(self, z, x0, a, s, t_next):
            a_n = self.alpha_bar[t_next].sqrt().view(-1, 1, 1, 1).float()
            s_n = (1 - self.alpha_bar[t_next]).sqrt().view(-1, 1, 1, 1).float()
            eps = (z - a * x0) / s
            return a_n * x0 + s_n * eps

        def train_step(self, batch, g, step):
            d = self.d
            k = self.stage(step)
            if step > 0 and step % d["steps_per_halving"] == 0 and step // d["steps_per_halving"] < d["halvings"]:
                self.teacher.load_state_dict(self.ema.state_dict())  # the last student teaches the next
            n_student = d["start_steps"] // 2 ** (k + 1)
            grid = torch.from_numpy(np.append(spaced_timesteps(self.T, 2 * n_student, "trailing"), -1))
            x, y = batch(g)
            i = torch.randint(0, n_student, (len(x),), generator=g)
            t, t1, t2 = grid[2 * i], grid[2 * i + 1], grid[2 * i + 2]
            noise = torch.randn(x.shape, generator=g)
            a = self.alpha_bar[t].sqrt().view(-1, 1, 1, 1).float()
            s = (1 - self.alpha_bar[t]).sqrt().view(-1, 1, 1, 1).float()
            z = a * x + s * noise
            labels = y if self.num_classes else None
            prediction = d["teacher_prediction"] if k == 0 else "v"
            guidance = d["teacher_guidance"] if k == 0 else 1.0  # folded into the first student already
            with torch.no_grad():
                x0, _, _ = self._predict_x0(self.teacher, z, t, labels, prediction, guidance)
                x0 = x0.clamp(-1, 1)
                z1 = self._ddim(z, x0, a, s, t1)
                x0b, a1, s1 = self._predict_x0(self.teacher, z1, t1, labels, prediction, guidance)
                x0b = x0b.clamp(-1, 1)
                z2 = self._ddim(z1, x0b, a1, s1, t2)
                a2 = self.alpha_bar[t2].sqrt().view(-1, 1, 1, 1).float()
                s2 = (1 - self.alpha_bar[t2]).sqrt().view(-1, 1, 1, 1).float()
                ratio = s2 / s
                target = torch.where(s2 == 0, z2, (z2 - ratio * z) / (a2 - ratio * a))
            self.unet.train()
            x0_student = a * z - s * self.unet(z, t, class_labels=labels).sample
            weight = torch.clamp(a * a / (s * s), min=1.0)  # truncated SNR
            loss = (weight * (x0_student - target) ** 2).mean()
            opt = self.optimizers["unet"]
            for group in opt.param_groups:
                group["lr"] = self._lr(step % d["steps_per_halving"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
            opt.step()
            self._update_ema(step % d["steps_per_halving"])
            return {"loss": loss.item(), "student_steps": float(n_student)}

    return Progressive
