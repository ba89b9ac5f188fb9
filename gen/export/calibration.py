"""INT8 calibration data: each component's real inputs, recorded while the fp32 bundle samples.

Random tensors calibrate a denoiser badly: its activations move with the timestep and the noise
level, so the ranges must cover every step of real sampling runs (Q-Diffusion, PTQ4DM). The bundle's
own Sampler runs on an ONNX Runtime backend that keeps a copy of every feed it is given: every
timestep of several seeds for denoisers, the latent z for GAN and VAE decoders, real prompts for the
Stable Diffusion UNet and text encoder. `ReplayReader` hands them back to ONNX Runtime's quantizer
in its `CalibrationDataReader` protocol.
"""

from __future__ import annotations

from pathlib import Path

from gen.errors import GenError
from gen.runtime.backends.recording import RecordingBackend  # noqa: F401  (the tests build it from here too)

# images per recorded call, below every family's limit; the call sizes bench and serving use
CALIBRATION_BATCH = 16
# varied captions: a text-to-image UNet's activations depend on the prompt as much as on the step
CALIBRATION_PROMPTS = (
    "a photograph of an astronaut riding a horse", "a red house by a lake", "a bowl of fruit on a wooden table",
    "a portrait of an old man, oil painting", "a city street at night in the rain", "a cat sleeping on a sofa",
    "mountains under a starry sky", "a watercolor of a sailing boat", "a close-up of a sunflower",
    "a plate of pasta, studio lighting", "a castle on a hill, fantasy art", "a dog running on the beach",
    "an abstract pattern of blue and gold", "a vintage car parked in front of a diner",
    "a forest path in autumn", "a robot reading a book in a library",
)


def record_calibration(bundle_dir: Path, images: int, seed: int, threads: int | None = None,
                       progress=print) -> dict[str, list[dict]]:
    """Sample `images` images from the bundle at its default settings (seeds `seed`, `seed` + 1, ..)
    and return every component call's feeds. Text-to-image bundles take one prompt per image."""
    from gen.runtime.bundle import load_bundle
    from gen.runtime.sampler import Sampler

    if images < 1:
        raise GenError(f"--calibration must be at least 1 image, got {images}")
    bundle = load_bundle(bundle_dir)
    backend = RecordingBackend(bundle, threads)
    if "image" in bundle.spec.required:
        raise GenError(f"int8 calibration samples a bundle at its defaults, but a {bundle.spec.name} bundle translates "
                       "input images and gen has no representative inputs to calibrate it on; export it without --int8")
    # what the family needs beyond a prompt (an inpainting base: an image and a mask)
    needed = {k: v for k, v in bundle.spec.bench_arguments(None, bundle).items() if v is not None and k != "prompt"}
    with Sampler(bundle_dir, backend=backend) as sampler:
        text = bundle.manifest.text is not None
        per_call = 1 if text else min(CALIBRATION_BATCH, sampler.limits.n)
        progress(f"recording calibration inputs: {images} image(s) sampled at the bundle's defaults ...")
        for i, start in enumerate(range(0, images, per_call)):
            prompt = CALIBRATION_PROMPTS[i % len(CALIBRATION_PROMPTS)] if text else None
            sampler.generate(prompt, n=min(per_call, images - start), seed=seed + i, **needed)
        recorded = backend.recorded
    progress("  " + ", ".join(f"{c}: {len(v)} calls" for c, v in recorded.items()))
    return recorded


class ReplayReader:
    """Recorded feeds as ONNX Runtime's `CalibrationDataReader` (get_next, plus the len/set_range
    that its strided calibration uses to bound memory on big models)."""

    def __init__(self, feeds: list[dict]):
        if not feeds:
            raise GenError("the calibration set is empty: the component was never called while sampling")
        self.feeds = feeds
        self.set_range(0, len(feeds))

    def __len__(self):
        return len(self.feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self.feeds[start_index:end_index])

    def get_next(self):
        return next(self._it, None)

    def __iter__(self):  # qdq_loss_debug.collect_activations iterates
        return iter(self.feeds)

    def rewind(self) -> None:
        self.set_range(0, len(self.feeds))
