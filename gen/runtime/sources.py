"""What a Sampler generates from: a `Source`, a bundle run here on a Backend or a pipeline served elsewhere.

`Sampler` holds one Source and asks it the same things whichever kind it is: its family and per-call
`limits`, whether it takes `on_step` and has images worth previewing, which arguments it requires,
whether it can take requests now (`unavailable`), what a page should show of it (`info`,
`argument`), and to generate, reconstruct, check arguments without running (`check`), `describe`
itself and `close` (the interface: gen.runtime.source). `BundleSource` (here) binds the arguments through the bundle's family spec and
runs the family's routine on a Backend; `gen.runtime.remote.ServedSource` sends them to a Triton
server, whose pipeline model runs the same routine on its own copy of the bundle. `open_source` picks
one from `Sampler`'s arguments, so neither the Sampler nor the demo branches on where a model runs.

Why here and not Triton as a Backend: a Backend runs one component of a bundle on named arrays
(`Backend.outputs`), while the family's routine here (the host's noise, the scheduler loop,
guidance) drives it, and needs the bundle's manifest, spec and signatures to do so. A served gen
pipeline runs that whole routine on the server: the request is generate()'s arguments, the answer the
images, and the client has no bundle, spec or components. Triton as a strict Backend would need the
bundle on the client and a network round trip per component call (every diffusion step), and would
bypass what the pipeline model does on the server (its limits, its batching, cancellation). So the
seam sits one level above the Backend, where the two paths really part: arguments in, images out.
"""

from __future__ import annotations

import os
import time

import numpy as np

from gen.errors import GenError, shown
from gen.runtime.backends import Backend, backend_names, create_backend
from gen.runtime.bundle import Bundle, load_bundle
from gen.runtime.source import Source

AUTO = "auto"  # this host's plan (gen tune), else ort fp32
SERVED = "triton"  # a gen pipeline on a Triton server (gen.runtime.remote.ServedSource)


class BundleSource(Source):
    """A bundle run in this process: arguments bound through its family spec, the family's routine on `backend`."""

    takes_on_step = True

    def __init__(self, bundle: Bundle, backend: Backend, limits: dict | None = None, plan_note: str | None = None):
        self.bundle, self.backend, self.plan_note = bundle, backend, plan_note
        spec = bundle.spec
        self.limits = spec.limits_for(bundle, limits)
        self.previews = spec.previews(bundle)  # text-to-image's x0 is latents: shown through a tiny decoder if any
        self.required = tuple(spec.required)
        self.last_timing: dict = {}
        self._routine = None  # the family's sampling routine, built on first use

    @property
    def family(self) -> str:
        return self.bundle.family

    def generate(self, arguments: dict, on_step=None) -> np.ndarray:
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
        return np.clip(images, -1.0, 1.0)

    def batch_steps(self) -> None:
        """From now on, concurrent generate() calls (threads) run their diffusion steps as one batch per
        step (gen.runtime.step_batch); each call's images stay what it would get alone."""
        from gen.runtime.step_batch import StepBatcher

        if not isinstance(self.backend, StepBatcher):
            self.backend, self._routine = StepBatcher(self.backend), None

    def reconstruct(self, images) -> np.ndarray:
        from gen.runtime.arguments import ARGUMENTS
        from gen.runtime.image_input import fit_to_model

        bundle, spec = self.bundle, self.bundle.spec
        spec.check_encoder(bundle)
        image = fit_to_model(ARGUMENTS["image"].check(images), bundle.image.channels, (bundle.image.height, bundle.image.width))
        if len(image) > self.limits.n:
            raise GenError(f"{len(image)} images is over this model's limit of {self.limits.n} per call; raise it with "
                           "Sampler(..., limits={'n': N})")
        x = np.ascontiguousarray(image.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(127.5) - 1
        return spec.reconstruct(self.backend, x)

    def check(self, arguments: dict) -> None:
        self.bundle.spec.bind(self.bundle, dict(arguments), self.limits)

    def preview(self, x0: np.ndarray) -> np.ndarray:
        return np.clip(self.bundle.spec.preview(self.backend, x0), -1.0, 1.0)

    def precisions(self) -> list[str]:
        files = [set(c.files) for c in self.bundle.manifest.components.values()]
        return sorted(set.intersection(*files)) if files else ["fp32"]

    def info(self) -> dict:
        from gen.runtime.arguments import ARGUMENTS, COMMON

        bundle, spec = self.bundle, self.bundle.spec
        return {
            "family": spec.name, "source": "a bundle",
            "arguments": [a for a in (*COMMON, *spec.accepts(bundle)) if a in ARGUMENTS],
            "required": sorted(spec.required), "precisions": self.precisions(),
            "image": {"height": bundle.image.height, "width": bundle.image.width, "channels": bundle.image.channels},
            "previews": self.previews, "limits": {"n": self.limits.n, "steps": self.limits.steps},
            "can_generate": spec.can_generate(bundle),
        }

    def argument(self, name: str) -> dict:
        bundle = self.bundle
        if name == "labels":
            return {"choices": list(bundle.manifest.conditioning.class_names) or [str(i) for i in range(bundle.num_classes)]}
        if name == "steps":
            return {"default": bundle.sampling.default_steps}
        return bundle.spec.argument(bundle, name)

    def describe(self) -> dict:
        return self.backend.describe()

    def close(self) -> None:
        self.backend.close()


def open_source(location, backend=AUTO, device: str = "cpu", precision: str | None = None, threads: int | None = None,
                model: str | None = None, limits: dict | None = None) -> Source:
    """The source `Sampler(location, backend=..., ...)` generates from (its docstring explains the arguments)."""
    if not isinstance(backend, Backend) and not isinstance(location, (str, os.PathLike)):
        raise GenError(f"bundle must be the path of a bundle directory (or a server URL with backend='triton'), "
                       f"got {shown(location)}", "bundle")
    if isinstance(backend, Backend):
        return BundleSource(backend.bundle, backend, limits)
    if backend == SERVED:
        from gen.runtime.remote import ServedSource

        return ServedSource(str(location), model, device=device, precision=precision, threads=threads, limits=limits)
    if backend == AUTO and device == "cpu" and precision is None:
        from gen.runtime.plan import planned_backend

        bundle = load_bundle(location)
        chosen, note = planned_backend(bundle, threads)
        return BundleSource(bundle, chosen, limits, note)
    backend = "ort" if backend == AUTO else backend
    if backend not in backend_names():
        raise GenError(f"unknown backend {backend!r}; choose one of {', '.join((*backend_names(), AUTO, SERVED))}")
    bundle = load_bundle(location)
    return BundleSource(bundle, create_backend(backend, bundle, device, precision, threads), limits)
