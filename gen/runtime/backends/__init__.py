"""Backends run a bundle's named components on named numpy arrays.

`Backend.outputs` is the one entry point: it validates the feeds against the bundle signature,
times the call (so the Sampler can report its own overhead), then hands over to the backend's
`_run`, which returns every output by name. `run` is the shorthand for single-output components.
A backend has a lifecycle (`close()`, or use it as a context manager) and says up front which
devices and precisions it runs, so none is silently ignored.

Backends register themselves by name (`register_backend`) with the module that holds them, so the
heavy library behind each (torch, onnxruntime, tensorrt) is imported only when one is created.
"""

from __future__ import annotations

import importlib
import threading
import time

import numpy as np

from gen.errors import GenError
from gen.runtime.bundle import Bundle
from gen.runtime.precision import check_precision
from gen.runtime.validate import check_feeds

DEVICES = ("cpu", "cuda")
MAX_THREADS = 1024  # more than any machine has cores; past it thread pools fail to start, not run faster
# A component up to this size gets a session per thread count it runs on, so its threads can give way
# to another job (gen.runtime.threads); a bigger one keeps the count of its first call, since a second
# session would hold its weights twice (an SD UNet: GBs).
ADAPT_MAX_BYTES = 256 << 20
_REGISTRY: dict[str, str] = {}  # name -> "module:Class"


def register_backend(name: str, where: str) -> None:
    _REGISTRY[name] = where


register_backend("eager", "gen.runtime.backends.eager:EagerBackend")
register_backend("ort", "gen.runtime.backends.ort:OrtBackend")
register_backend("compile", "gen.runtime.backends.compiled:CompileBackend")
register_backend("openvino", "gen.runtime.backends.openvino:OpenVinoBackend")
register_backend("trt", "gen.runtime.backends.trt:TrtBackend")  # unverified: no TensorRT here


def backend_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


class Backend:
    name = "base"
    devices: tuple[str, ...] = DEVICES
    precisions: dict[str, tuple[str, ...]] = {"cpu": ("fp32", "fp16"), "cuda": ("fp32", "fp16")}
    precision_notes: dict[str, str] = {}  # (device/precision) -> why it is not offered
    # runs gen.runtime.denoise's whole loop itself (denoise_resident), keeping the sample on its device
    resident_loop = False
    # its thread count follows other jobs' load between calls (threads_for) unless one was asked for
    adapts_threads = False

    def __init__(self, bundle: Bundle, device: str, precision: str, threads: int | None, default_threads: int | None = None):
        from gen.runtime.threads import ThreadShare

        self.bundle, self.device, self.precision = bundle, device, precision
        self.share = ThreadShare(threads, default_threads, adapts=self.adapts_threads)
        self.thread_changes: list[str] = []  # what adapting did, for describe()
        # per component, decided at its first call: None (its count adapts) or the count it keeps (too big)
        self._fixed_threads: dict[str, int | None] = {}
        self._opening = threading.Lock()  # one session/compile per key when request threads share this backend
        self.network_seconds = 0.0
        self.component_seconds: dict[str, float] = {}  # per-stage totals, for benchmarks
        self.component_calls: dict[str, int] = {}
        self.closed = False

    @classmethod
    def check_settings(cls, device: str, precision: str) -> None:
        if device not in cls.devices:
            raise GenError(f"backend {cls.name!r} does not run on device {device!r}; it runs on {', '.join(cls.devices)}")
        if precision not in cls.precisions.get(device, ()):
            note = cls.precision_notes.get(f"{device}/{precision}")
            raise GenError(note or f"backend {cls.name!r} does not run {precision} on {device}; "
                                   f"it runs {', '.join(cls.precisions.get(device, ()))}")

    def outputs(self, component: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output of one component call, by name."""
        self.check_open()
        if component not in self.bundle.components:
            raise GenError(f"bundle has no component {component!r}; it has {sorted(self.bundle.components)}")
        check_feeds(component, self.bundle.signature(component), feeds)
        t0 = time.perf_counter()
        out = self._run(component, feeds)
        self.count(component, time.perf_counter() - t0)
        return out

    @property
    def threads(self) -> int:
        return self.share.threads

    def threads_for(self, component: str) -> int:
        """The thread count `component`'s next call runs on: re-measured now and then (ThreadShare)
        for components up to ADAPT_MAX_BYTES, the first call's count for bigger ones."""
        if component not in self._fixed_threads:  # the files' size is read once, not on every call
            big = not self.share.pinned and self.component_bytes(component) > ADAPT_MAX_BYTES
            self._fixed_threads[component] = self.share.threads if big else None
        fixed = self._fixed_threads[component]
        if fixed is not None:
            return fixed
        change = self.share.adapt("sampling")
        if change:
            self.thread_changes = [*self.thread_changes[-9:], change]
        return self.share.threads

    def component_bytes(self, component: str) -> int:
        """The size of the files `component` loads at this backend's precision."""
        path = self.bundle.onnx_path(component, self.precision)
        files = [path, path.with_suffix(".bin"), self.bundle.external_data_path(component, self.precision)]
        return sum(f.stat().st_size for f in files if f is not None and f.is_file())

    def check_open(self) -> None:
        if self.closed:
            raise GenError(f"backend {self.name!r} is closed")

    def count(self, component: str, seconds: float, calls: int = 1) -> None:
        """Book network calls, so the Sampler can tell the networks' time from its own."""
        self.network_seconds += seconds
        self.component_seconds[component] = self.component_seconds.get(component, 0.0) + seconds
        self.component_calls[component] = self.component_calls.get(component, 0) + calls

    def run(self, component: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The output of a single-output component (most are); `outputs` for the others."""
        out = self.outputs(component, feeds)
        if len(out) != 1:
            raise GenError(f"{component} has {len(out)} outputs ({', '.join(out)}); call outputs() for them")
        return next(iter(out.values()))

    def output_names(self, component: str) -> list[str]:
        return [s["name"] for s in self.bundle.signature(component)["outputs"]]

    def _run(self, component: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> dict:
        """What actually runs (for reports): backend, device, precision, providers."""
        return {"backend": self.name, "device": self.device, "precision": self.precision, "threads": self.threads,
                "threads_rule": self.share.describe(), **({"threads_changed": self.thread_changes} if self.thread_changes else {})}

    def close(self) -> None:
        """Release sessions, modules and device memory; the backend refuses calls afterwards."""
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def create_backend(name: str, bundle: Bundle, device: str = "cpu", precision: str | None = None, threads: int | None = None) -> Backend:
    if name not in _REGISTRY:
        raise GenError(f"unknown backend {name!r}; choose one of {', '.join(backend_names())}")
    if device not in DEVICES:
        raise GenError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    # fp16 pays on GPUs; on CPUs ORT runs most fp16 ops through casts, so fp32 is the CPU default.
    precision = precision or (bundle.default_precision if device == "cuda" else "fp32")
    check_precision(precision)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS):
        raise GenError(f"threads must be at least 1 and at most {MAX_THREADS}, got {threads}", "threads")
    module, cls_name = _REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    cls.check_settings(device, precision)
    return cls(bundle, device, precision, threads)
