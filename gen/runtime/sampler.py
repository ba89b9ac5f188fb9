"""`Sampler(bundle, backend=...).generate(...)`: one API over every family and backend.

The host draws all noise with numpy from the seed, so a seed gives the same images whichever
backend runs the networks. What a family takes and how it samples is its spec's business
(gen.runtime.families); a bundle's source (gen.runtime.sources) binds the arguments through it and
runs its routine, a served pipeline's source sends them to its server, and the Sampler converts the images.
"""

from __future__ import annotations

import numpy as np

from gen.errors import GenError
from gen.runtime.source import Source
from gen.runtime.sources import AUTO, SERVED, open_source

__all__ = ["AUTO", "OUTPUTS", "SERVED", "Sampler"]

OUTPUTS = ("np", "pil", "uint8")


class Sampler:
    """`bundle` is a bundle directory, or a server URL with backend="triton" and `model=NAME`.

    `backend` is one of the registered backends ("eager", "ort", "openvino", ...), "triton", an
    already-built Backend instance, or "auto" (the default): the plan `gen tune` measured for this host
    (gen.runtime.plan), else ORT fp32; `plan_note` says which and why. Naming a device other than "cpu"
    or a precision with "auto" means ORT, as before plans existed. Use it as a context manager (or call `close()`) to release sessions early.
    `limits` raises or lowers what one call may ask for (gen.runtime.families.Limits: n, steps,
    pixels, prompt_chars); the family's defaults apply otherwise.

    What it generates from is its `source` (gen.runtime.sources): a bundle on a backend here, or a
    pipeline on a server; `bundle` and `backend` are None for the latter, and `limits` too (the
    server enforces its own).
    """

    def __init__(self, bundle, backend=AUTO, device: str = "cpu", precision: str | None = None,
                 threads: int | None = None, model: str | None = None, limits: dict | None = None):
        self.source: Source = open_source(bundle, backend, device, precision, threads, model, limits)

    @property
    def bundle(self):
        return self.source.bundle

    @property
    def backend(self):
        return self.source.backend

    @property
    def limits(self):
        """What one call may ask for (gen.runtime.families.Limits); None where a server enforces its own."""
        return self.source.limits

    @property
    def plan_note(self) -> str | None:
        return self.source.plan_note

    @property
    def last_timing(self) -> dict:
        """The last generate()'s seconds: total_s, network_s and overhead_s (empty where not measured)."""
        return self.source.last_timing

    @property
    def family(self) -> str:
        return self.source.family

    def generate(self, prompt=None, n: int = 1, seed: int = 0, output: str = "np", on_step=None, **arguments):
        """n images (per prompt, for text-to-image bundles) in [-1, 1] (NCHW float32), as PIL images,
        or as NHWC uint8, per `output`.

        Other keywords are the family's (gen.runtime.arguments lists them all): `steps`, `scheduler`,
        `eta`, `guidance` for diffusion; `labels` for class-conditional bundles; `negative_prompt`,
        `height`, `width` for text-to-image. One a bundle does not take is refused, by name.
        `on_step(i, steps, x0)` is called after each diffusion step with the predicted clean images
        (in the model's space: latents for text-to-image), for progress and previews; an exception it
        raises stops the call. `source.takes_on_step` says whether this Sampler's source takes it.
        """
        if output not in OUTPUTS:
            raise GenError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        if isinstance(prompt, (int, np.integer)) and not isinstance(prompt, bool):
            raise GenError(f"generate()'s first argument is the prompt (text-to-image bundles); "
                           f"pass the number of images as n={prompt}")
        arguments = {"prompt": prompt, "n": n, "seed": seed, **arguments}
        return _convert(self.source.generate(arguments, on_step), output)

    def reconstruct(self, images, output: str = "np"):
        """Images through the bundle's encoder and decoder (autoencoders: ae, vae, vqvae), as
        `output` like generate(). `images` is anything `generate(image=...)` takes, one or a batch,
        fitted to the model by gen.runtime.image_input.fit_to_model."""
        if output not in OUTPUTS:
            raise GenError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        return _convert(self.source.reconstruct(images), output)

    def describe(self) -> dict:
        """What actually runs (for reports): a backend's describe(), or the server and model."""
        return self.source.describe()

    def close(self) -> None:
        self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _convert(images: np.ndarray, output: str):
    if output == "np":
        return images.astype(np.float32, copy=False)
    from gen.images import to_uint8

    u8 = to_uint8(images)
    if output == "uint8":
        return u8
    from PIL import Image

    return [Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im) for im in u8]
