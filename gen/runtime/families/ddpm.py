"""Pixel-space DDPM bundles: a scheduler looped over `denoiser(sample, timestep[, class_labels])`,
with classifier-free guidance for class-conditional models (one batched call per step)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from gen.runtime.arguments import class_labels
from gen.runtime.denoise import denoise
from gen.runtime.families.diffusion import DiffusionFamily, DiffusionSampling


@dataclass
class DdpmSampling(DiffusionSampling):
    null_label: Optional[int] = None  # the extra class row a conditional model was trained with for "no label"
    # a few-step student (gen distill): {"method", "steps" (what it was distilled for), "max_steps", ...}
    student: Optional[dict[str, Any]] = None


class Ddpm(DiffusionFamily):
    name = "ddpm"
    components = ("denoiser",)
    Sampling = DdpmSampling
    refusals = {**DiffusionFamily.refusals,
                "guidance": "guidance needs a class-conditional model; this bundle is unconditional"}

    def accepts(self, bundle):
        if bundle.num_classes:
            return (*self.takes, "labels")
        return tuple(a for a in self.takes if a != "guidance")

    def guided(self, bundle):
        return bool(bundle.num_classes)

    def limits_for(self, bundle, overrides=None):
        """A student samples well near the step count it was distilled for: 1..max_steps."""
        limits = super().limits_for(bundle, None)
        student = bundle.sampling.student
        if student:
            limits = dataclasses.replace(limits, steps=int(student["max_steps"]))
        return limits.merged(overrides)

    def check(self, bundle, args):
        super().check(bundle, args)
        if bundle.num_classes:
            args["labels"] = class_labels(args.get("labels"), args["n"], bundle.num_classes)

    def sample(self, backend, n, rng, args, on_step=None):
        bundle = backend.bundle
        sched = self.scheduler(bundle, args)
        labels = args.get("labels")
        w = self.guidance(bundle, args)
        guided = labels is not None and w != 1.0
        cond = labels
        if guided:
            cond = np.concatenate([labels, np.full(n, bundle.sampling.null_label, dtype=np.int64)])
        img = bundle.image
        x = rng.standard_normal((n, img.channels, img.height, img.width), dtype=np.float32) * np.float32(sched.init_noise_sigma)

        def predict(model_in, t):
            feeds = {"sample": model_in, "timestep": np.full(len(model_in), t, dtype=np.int64)}
            if cond is not None:
                feeds["class_labels"] = cond
            return backend.run("denoiser", feeds)

        return denoise(sched, x, rng, predict, w if guided else None, unconditional_first=False, on_step=on_step)


FAMILY = Ddpm()
