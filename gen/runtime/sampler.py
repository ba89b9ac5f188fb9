"""`Sampler(bundle, backend=...).generate(...)`: one API over every family and backend.

The host draws all noise with numpy from the seed, so a seed gives the same images whichever
backend runs the networks. What a family takes and how it samples is its spec's business
(gen.runtime.families); the Sampler binds the arguments through it, runs its routine and converts
the images.
"""

from __future__ import annotations

import os
import time

import numpy as np

from gen.errors import GenError, shown
from gen.runtime.backends import Backend, backend_names, create_backend
from gen.runtime.bundle import load_bundle

OUTPUTS = ("np", "pil", "uint8")
REMOTE = "triton"
AUTO = "auto"  # this host's plan (gen tune), else ort fp32


class Sampler:
    """`bundle` is a bundle directory, or a server URL with backend="triton" and `model=NAME`.

    `backend` is one of the registered backends ("eager", "ort", "openvino", ...), "triton", an
    already-built Backend instance, or "auto" (the default): the plan `gen tune` measured for this host
    (gen.runtime.plan), else ORT fp32; `plan_note` says which and why. Naming a device other than "cpu"
    or a precision with "auto" means ORT, as before plans existed. Use it as a context manager (or call `close()`) to release sessions early.
    `limits` raises or lowers what one call may ask for (gen.runtime.families.Limits: n, steps,
    pixels, prompt_chars); the family's defaults apply otherwise.
    """

    def __init__(self, bundle, backend=AUTO, device: str = "cpu", precision: str | None = None,
                 threads: int | None = None, model: str | None = None, limits: dict | None = None):
        self.last_timing: dict = {}
        self.remote = None
        self.plan_note = None
        self._routine = None  # the family's sampling routine, built on first use
        if not isinstance(backend, Backend) and not isinstance(bundle, (str, os.PathLike)):
            raise GenError(f"bundle must be the path of a bundle directory (or a server URL with backend='triton'), "
                           f"got {shown(bundle)}", "bundle")
        if isinstance(backend, Backend):
            self.bundle, self.backend = backend.bundle, backend
        elif backend == REMOTE:
            given = {k: v for k, v in (("device", device != "cpu"), ("precision", precision), ("threads", threads),
                                       ("limits", limits)) if v}
            if given:  # the server decides these; silently dropping them would mislead
                raise GenError(f"backend 'triton' runs on the server, which fixes {', '.join(given)}; "
                               "set them in `gen serve build` instead")
            from gen.runtime.remote import RemoteGenerator

            self.remote = RemoteGenerator(str(bundle), model)
        elif backend == AUTO and device == "cpu" and precision is None:
            from gen.runtime.plan import planned_backend

            self.bundle = load_bundle(bundle)
            self.backend, self.plan_note = planned_backend(self.bundle, threads)
        else:
            backend = "ort" if backend == AUTO else backend
            if backend not in backend_names():
                raise GenError(f"unknown backend {backend!r}; choose one of {', '.join((*backend_names(), AUTO, REMOTE))}")
            self.bundle = load_bundle(bundle)
            self.backend = create_backend(backend, self.bundle, device, precision, threads)
        # what one call may ask for; a served model's server enforces its own
        self.limits = None if self.remote else self.bundle.spec.limits_for(self.bundle, limits)

    @property
    def family(self) -> str:
        return self.remote.family if self.remote else self.bundle.family

    def generate(self, prompt=None, n: int = 1, seed: int = 0, output: str = "np", on_step=None, **arguments):
        """n images (per prompt, for text-to-image bundles) in [-1, 1] (NCHW float32), as PIL images,
        or as NHWC uint8, per `output`.

        Other keywords are the family's (gen.runtime.arguments lists them all): `steps`, `scheduler`,
        `eta`, `guidance` for diffusion; `labels` for class-conditional bundles; `negative_prompt`,
        `height`, `width` for text-to-image. One a bundle does not take is refused, by name.
        `on_step(i, steps, x0)` is called after each diffusion step with the predicted clean images
        (in the model's space: latents for text-to-image), for progress and previews; an exception it
        raises stops the call.
        """
        if output not in OUTPUTS:
            raise GenError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        if isinstance(prompt, (int, np.integer)) and not isinstance(prompt, bool):
            raise GenError(f"generate()'s first argument is the prompt (text-to-image bundles); "
                           f"pass the number of images as n={prompt}")
        arguments = {"prompt": prompt, "n": n, "seed": seed, **arguments}
        if self.remote is not None:
            if on_step is not None:
                raise GenError("on_step runs in process; a served model reports no steps")
            return _convert(self.remote.generate(**arguments), output)
        spec = self.bundle.spec
        args = spec.bind(self.bundle, arguments, self.limits)
        n, rng = args.pop("n"), np.random.default_rng(args.pop("seed"))
        if self._routine is None:
            self._routine = spec.routine(self.backend)
        before, t0 = self.backend.network_seconds, time.perf_counter()
        images = self._routine(n, rng, args, on_step)
        total = time.perf_counter() - t0
        network = self.backend.network_seconds - before
        self.last_timing = {"total_s": total, "network_s": network, "overhead_s": total - network}
        images = np.clip(images, -1.0, 1.0)
        return _convert(images, output)

    def reconstruct(self, images, output: str = "np"):
        """Images through the bundle's encoder and decoder (autoencoders: ae, vae, vqvae), as
        `output` like generate(). `images` is anything `generate(image=...)` takes, one or a batch,
        fitted to the model by gen.runtime.image_input.fit_to_model."""
        from gen.runtime.arguments import ARGUMENTS
        from gen.runtime.image_input import fit_to_model

        if output not in OUTPUTS:
            raise GenError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        if self.remote is not None:
            raise GenError("reconstruct() runs in process on a bundle; a served model answers generate() requests")
        bundle, spec = self.bundle, self.bundle.spec
        spec.check_encoder(bundle)
        image = fit_to_model(ARGUMENTS["image"].check(images), bundle.image.channels, (bundle.image.height, bundle.image.width))
        if len(image) > self.limits.n:
            raise GenError(f"{len(image)} images is over this model's limit of {self.limits.n} per call; raise it with "
                           "Sampler(..., limits={'n': N})")
        x = np.ascontiguousarray(image.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(127.5) - 1
        return _convert(spec.reconstruct(self.backend, x), output)

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()
        else:
            self.backend.close()

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
