"""Pixel-space DDPM bundles: a scheduler looped over `denoiser(sample, timestep[, class_labels])`,
with classifier-free guidance for class-conditional models (one batched call per step), and
classifier guidance where the bundle has a noisy classifier's input gradient (`classifier_grad`,
from `gen train noisy-classifier`): each step's output is moved along grad log p(labels | x_t)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from gen.errors import GenError
from gen.runtime.arguments import class_labels
from gen.runtime.denoise import DenoiserCall, denoise
from gen.runtime.families.diffusion import DiffusionFamily, DiffusionSampling


@dataclass
class DdpmSampling(DiffusionSampling):
    null_label: Optional[int] = None  # the extra class row a conditional model was trained with for "no label"
    # a few-step student (gen distill): {"method", "steps" (what it was distilled for), "max_steps", ...}
    student: Optional[dict[str, Any]] = None
    # a noisy classifier (gen train noisy-classifier): {"num_classes", "class_names", "scale" (the default),
    # "scheduler" (the default when classifier guidance is on)}
    classifier: Optional[dict[str, Any]] = None


class Ddpm(DiffusionFamily):
    name = "ddpm"
    components = ("denoiser",)
    Sampling = DdpmSampling
    refusals = {**DiffusionFamily.refusals,
                "guidance": "guidance needs a class-conditional model; this bundle is unconditional",
                "classifier_scale": "classifier_scale needs a bundle with a noisy classifier: train one with "
                                    "`gen train noisy-classifier RUN` and export that run"}

    def accepts(self, bundle):
        takes = self.takes if bundle.num_classes else tuple(a for a in self.takes if a != "guidance")
        if bundle.num_classes or bundle.sampling.classifier:
            takes = (*takes, "labels")
        if bundle.sampling.classifier:
            takes = (*takes, "classifier_scale")
        return takes

    def example_for(self, bundle):
        if bundle.sampling.classifier:
            return f"--label 3 --classifier-scale {bundle.sampling.classifier['scale']:g} --out threes.png"
        return self.example

    def guided(self, bundle):
        return bool(bundle.num_classes)

    def limits_for(self, bundle, overrides=None):
        """A student samples well near the step count it was distilled for: 1..max_steps."""
        limits = super().limits_for(bundle, None)
        student = bundle.sampling.student
        if student:
            limits = dataclasses.replace(limits, steps=int(student["max_steps"]))
        return limits.merged(overrides)

    def check_limits(self, bundle, args, limits):
        """A student's step range is what it learned, not a cost guard: said as such, with no limit to raise."""
        student = bundle.sampling.student
        if student and args.get("steps", 0) > limits.steps == int(student["max_steps"]):
            raise GenError(f"steps = {args['steps']} is past this student's range of 1..{limits.steps}: it was distilled "
                           f"to sample in {student['steps']} steps and was not trained for more (for many-step sampling "
                           "use its teacher)", "steps")
        super().check_limits(bundle, args, limits)

    def check(self, bundle, args):
        classifier = bundle.sampling.classifier
        if bundle.num_classes:
            args["labels"] = class_labels(args.get("labels"), args["n"], bundle.num_classes)
        elif classifier and ("labels" in args or args.get("classifier_scale")):
            args["labels"] = class_labels(args.get("labels"), args["n"], classifier["num_classes"])
        if classifier and "labels" in args and "classifier_scale" not in args:
            args["classifier_scale"] = float(classifier["scale"])
        if classifier and args.get("classifier_scale") and "scheduler" not in args and classifier.get("scheduler"):
            # ancestral sampling: its fresh noise each step keeps the gradient from steering a fixed
            # trajectory into the classifier's adversarial directions (on the digits, s = 1: DDIM 63%
            # label accuracy, DDPM 86%; docs/RESULTS.md)
            args["scheduler"] = classifier["scheduler"]
        super().check(bundle, args)  # after the default scheduler is set: eta is checked against it

    def sample(self, backend, n, rng, args, on_step=None):
        bundle = backend.bundle
        sched = self.scheduler(bundle, args)
        labels = args.get("labels")
        w = self.guidance(bundle, args)
        guided = bool(bundle.num_classes) and w != 1.0
        cond = labels if bundle.num_classes else None  # labels of an unconditional model are the classifier's
        if guided:
            cond = np.concatenate([labels, np.full(n, bundle.sampling.null_label, dtype=np.int64)])
        img = bundle.image
        x = rng.standard_normal((n, img.channels, img.height, img.width), dtype=np.float32) * np.float32(sched.init_noise_sigma)

        call = DenoiserCall("denoiser", np.int64, {} if cond is None else {"class_labels": cond})
        scale = args.get("classifier_scale") or 0.0

        def guide(model_in, t, out):
            grad = backend.run("classifier_grad", {"sample": model_in, "timestep": np.full(n, t, dtype=np.int64),
                                                   "labels": labels})
            return sched.guide(out, t, grad, scale)

        return denoise(sched, x, rng, backend, call, w if guided else None, unconditional_first=False, on_step=on_step,
                       guide=guide if scale else None)


FAMILY = Ddpm()
