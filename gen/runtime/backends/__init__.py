"""Backends run a bundle's named components on named numpy arrays.

`Backend.run` is the one entry point: it validates the feeds against the bundle signature, times
the call (so the Sampler can report its own overhead), then hands over to the backend's `_run`.
Heavy libraries are imported only when a backend is created.
"""

from __future__ import annotations

import time

import numpy as np

from gen.errors import GenError
from gen.runtime.bundle import PRECISIONS, Bundle
from gen.runtime.validate import check_feeds

BACKENDS = ("eager", "ort")
DEVICES = ("cpu", "cuda")


class Backend:
    name = "base"

    def __init__(self, bundle: Bundle, device: str, precision: str, threads: int | None):
        self.bundle, self.device, self.precision, self.threads = bundle, device, precision, threads
        self.network_seconds = 0.0
        self.component_seconds: dict[str, float] = {}  # per-stage totals, for benchmarks
        self.component_calls: dict[str, int] = {}

    def run(self, component: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if component not in self.bundle.components:
            raise GenError(f"bundle has no component {component!r}; it has {sorted(self.bundle.components)}")
        check_feeds(component, self.bundle.signature(component), feeds)
        t0 = time.perf_counter()
        out = self._run(component, feeds)
        dt = time.perf_counter() - t0
        self.network_seconds += dt
        self.component_seconds[component] = self.component_seconds.get(component, 0.0) + dt
        self.component_calls[component] = self.component_calls.get(component, 0) + 1
        return out

    def _run(self, component: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        """What actually runs (for reports): backend, device, precision, providers."""
        return {"backend": self.name, "device": self.device, "precision": self.precision, "threads": self.threads}


def create_backend(name: str, bundle: Bundle, device: str = "cpu", precision: str | None = None, threads: int | None = None) -> Backend:
    if name not in BACKENDS:
        raise GenError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise GenError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    # fp16 pays on GPUs; on CPUs ORT runs most fp16 ops through casts, so fp32 is the CPU default.
    precision = precision or (bundle.default_precision if device == "cuda" else "fp32")
    if precision not in PRECISIONS:
        raise GenError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if threads is not None and threads < 1:
        raise GenError(f"threads must be at least 1, got {threads}")
    if name == "ort":
        from gen.runtime.backends.ort import OrtBackend as cls
    else:
        from gen.runtime.backends.eager import EagerBackend as cls
    return cls(bundle, device, precision, threads)
