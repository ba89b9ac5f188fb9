"""What a Stable Diffusion candidate is judged against: diffusers' own pipeline at 25 DPM-Solver++ steps
(eager, the base's guidance) on fixed prompts and seeds, and how far a candidate's images are from it.

The reference is what a user of the base would run without gen, so it is also the speed baseline the
issue names. Its noise is gen's for the same seed (numpy's default_rng(seed), one image per call), so a
candidate that samples the same way reproduces it: gen's own 25-step DPM-Solver++ lands within
fractions of a grey level. Two figures per candidate, over all its images:

- psnr_db: PSNR against the reference images (pooled MSE, images in [-1, 1]); the gate's figure;
- feature_distance: the mean over gen's photo classifier's four conv blocks of |f(x) - f(ref)|^2 /
  |f(ref)|^2 (each block alike, whatever its scale): how far in features a candidate strays, since two
  images can differ in PSNR and look alike. The classifier is gen eval's photos classifier (seed 0,
  cached), trained on 32 px crops of scikit-image's photos; its conv blocks read any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_SCHEDULER, REFERENCE_STEPS = "dpm++", 25  # the baseline: diffusers at 25 DPM-Solver++ steps
REFERENCE_NAME = f"diffusers {REFERENCE_SCHEDULER} {REFERENCE_STEPS} steps (eager)"


@dataclass(frozen=True)
class Item:
    """One scored image: a prompt and the seed of its noise."""
    prompt: str
    seed: int


def items(n: int, seed: int) -> list[Item]:
    """n (prompt, seed) pairs: gen's calibration prompts in turn, seeds seed, seed + 1, ..."""
    from gen.export.calibration import CALIBRATION_PROMPTS

    return [Item(CALIBRATION_PROMPTS[i % len(CALIBRATION_PROMPTS)], seed + i) for i in range(n)]


class Reference:
    """diffusers' StableDiffusionPipeline for the base, with its DPM-Solver++ (multistep) scheduler."""

    def __init__(self, base: str | None, size: int, guidance: float, threads: int):
        import torch
        from diffusers import DPMSolverMultistepScheduler

        from gen.trainkit.sd.base import load_base

        torch.set_num_threads(threads)
        self.torch, self.size, self.guidance = torch, size, guidance
        self.pipe = load_base(base, lambda m: None).pipe
        self.pipe.scheduler = DPMSolverMultistepScheduler.from_config(self.pipe.scheduler.config)
        self.pipe.set_progress_bar_config(disable=True)

    def __call__(self, item: Item) -> np.ndarray:
        """One image, NCHW in [-1, 1], from the same noise gen draws for this seed."""
        f = 2 ** (len(self.pipe.vae.config.block_out_channels) - 1)
        channels = self.pipe.unet.config.in_channels
        latents = np.random.default_rng(item.seed).standard_normal((1, channels, self.size // f, self.size // f),
                                                                   dtype=np.float32)
        with self.torch.inference_mode():
            out = self.pipe(item.prompt, num_inference_steps=REFERENCE_STEPS, height=self.size, width=self.size,
                            guidance_scale=self.guidance, latents=self.torch.from_numpy(latents), output_type="np").images
        return out.transpose(0, 3, 1, 2) * 2 - 1

    def images(self, todo: list[Item], progress=lambda m: None) -> np.ndarray:
        out = []
        for i, item in enumerate(todo):
            progress(f"  reference {i + 1}/{len(todo)}: {item.prompt!r}, seed {item.seed}")
            out.append(self(item))
        return np.concatenate(out)


def candidate_images(sampler, todo: list[Item], size: int, options: dict) -> np.ndarray:
    """The candidate's images for the same prompts and seeds, one call each (as the reference ran)."""
    return np.concatenate([sampler.generate(item.prompt, n=1, seed=item.seed, height=size, width=size, **options)
                           for item in todo])


def score(images: np.ndarray, reference: np.ndarray) -> dict:
    """{"psnr_db", "feature_distance"} of `images` against the reference images (same order)."""
    from gen.runtime.quality import psnr

    if images.shape != reference.shape:
        raise ValueError(f"candidate images {images.shape} do not match the reference's {reference.shape}")
    value = psnr(reference, np.clip(images, -1, 1))
    return {"psnr_db": round(value, 3) if np.isfinite(value) else value,
            "feature_distance": round(feature_distance(np.clip(images, -1, 1), reference), 5)}


def feature_distance(images: np.ndarray, reference: np.ndarray) -> float:
    import torch

    from gen.nets.classifier import feature_distance as distance

    model = _photo_classifier()  # outside no_grad: on first use it trains
    x, y = (torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in (images, reference))
    with torch.no_grad():
        return float(distance(model.block_outputs, x, y))


_CLASSIFIER: list = []


def _photo_classifier():
    """gen eval's photos classifier (trained once, cached under gen's cache; loaded once a process)."""
    if not _CLASSIFIER:
        from gen.trainkit.data.images import photo_dataset
        from gen.trainkit.eval.classifier import load_or_train_classifier

        model, _, _ = load_or_train_classifier(photo_dataset())
        _CLASSIFIER.append(model.eval())
    return _CLASSIFIER[0]
