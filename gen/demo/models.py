"""The models a demo serves: each a bundle (or a model on a Triton server) with its declared
`generate()` arguments, lazily opened Samplers per precision, and an admission gate.

The gate runs at most `concurrency` generations of one model at a time and lets `queue` more wait;
with more than one at a time, a bundle's runs meet in one step batch (gen.runtime.step_batch: one
network call per diffusion step for all of them, a newcomer joining at the next step);
a request beyond that is refused at once (the app answers 429 with a Retry-After from the last run's
time) instead of piling up behind a slow diffusion model. A run is cancelled between steps when its
`cancel` event is set (the client went away).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from gen.errors import GenError
from gen.runtime.arguments import ARGUMENTS


class Busy(Exception):
    """Every slot and queue place of a model is taken."""

    def __init__(self, retry_after: float):
        super().__init__(f"busy; retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class Cancelled(Exception):
    """The client went away; the run stopped between steps."""


def _choices(name: str) -> list | None:
    """The valid values of a name-kind argument, for a select box."""
    if name == "scheduler":
        from gen.runtime.schedulers import scheduler_names

        return list(scheduler_names())
    if name == "direction":
        from gen.runtime.families.cyclegan import DIRECTIONS

        return list(DIRECTIONS)
    if name == "decoder":
        from gen.runtime.families.sd import DECODERS

        return list(DECODERS)
    return None


@dataclass
class DemoModel:
    """One model of the demo: Samplers opened with `Sampler(location, **options)`, one per precision
    asked for. Whether it is a bundle here or a model on a server is its Sampler's source's business
    (gen.runtime.sources): the demo asks the source, never which kind it is."""

    name: str
    location: str  # what Sampler takes first: a bundle directory, or a server URL (options: backend="triton", model)
    options: dict = field(default_factory=dict)  # Sampler's other keywords (backend, threads, limits, model)
    concurrency: int = 1
    queue: int = 2
    _samplers: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _admitted: int = 0
    _last_seconds: float = 5.0
    runs: dict = field(default_factory=lambda: {"completed": 0, "cancelled": 0, "failed": 0})  # shown by /api/models

    def __post_init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._slots = threading.Semaphore(self.concurrency)
        # a thread per admitted request (running or waiting), its own: one model's queue cannot use up
        # the threads another model needs
        self.executor = ThreadPoolExecutor(self.concurrency + self.queue, thread_name_prefix=f"demo-{self.name}")
        source = self.sampler().source  # open it now: a bad bundle or URL fails at start, not at the first click
        self.previews = source.previews
        self.required = source.required  # e.g. pix2pix's image
        self.precisions = source.precisions()  # none to choose from: a served model's are its repository's
        reason = self.unavailable()
        if reason:  # only a server can be away, and only --url names one
            raise GenError(f"--url {self.location}: {reason}; start the server (gen serve start) or fix --url/--model", "--url")

    # -- samplers ------------------------------------------------------------------------------
    def sampler(self, precision: str | None = None):
        from gen.runtime.sampler import Sampler

        key = precision or "default"
        with self._lock:
            if key not in self._samplers:
                precise = {"precision": precision} if precision else {}  # a served model's Sampler refuses one
                self._samplers[key] = Sampler(self.location, **self.options, **precise)
                if self.concurrency > 1:  # runs at once meet in one step batch
                    self._samplers[key].source.batch_steps()
            return self._samplers[key]

    def preview(self, x0, precision: str | None = None) -> np.ndarray:
        """A step's x0 as one uint8 HWC picture (a latent model's through its tiny decoder)."""
        from gen.images import to_uint8

        return to_uint8(self.sampler(precision).source.preview(np.asarray(x0[:1])))[0]

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        for s in self._samplers.values():
            s.close()

    # -- what the page and /api/models show ----------------------------------------------------
    def describe(self) -> dict:
        """What the pages and /api/models show; no path or address of this machine (a page need not know them)."""
        source = self.sampler().source
        reason = self.unavailable()  # a served model's arguments are read on the way
        info = source.info()
        arguments = [self._argument(a, source) for a in info.pop("arguments")]
        return {"name": self.name, "family": info.pop("family"), "source": info.pop("source"), "available": not reason,
                "reason": reason or None, "arguments": arguments, **info, "runs": dict(self.runs)}

    def unavailable(self) -> str:
        """Why the model cannot take requests now ("" when it can)."""
        return self.sampler().source.unavailable()

    @staticmethod
    def _argument(name: str, source) -> dict:
        a = ARGUMENTS[name]
        high = getattr(source.limits, name, None) if name in ("n", "steps") else a.high  # the model's Limits apply
        out = {"name": name, "kind": a.kind, "help": a.help, "rule": a.rule, "low": a.low, "high": high,
               "choices": _choices(name)}
        out.update(source.argument(name))  # e.g. a bundle's class names, its default steps
        return out

    def check(self, arguments: dict) -> None:
        """Refuse bad arguments now, as the bundle's generate() would, before the request waits for a
        slot; a limit is explained as this demo's (the option that raises it), not as the Sampler's."""
        from gen.runtime.families import LimitError

        try:
            self.sampler().source.check(arguments)  # a served model's server checks, and names the argument
        except LimitError as e:
            option = DEMO_LIMIT_OPTIONS.get(e.limit_name)
            raise GenError(f"{e.what} is over this demo's limit of {e.limit}"
                           + (f"; whoever runs the demo can raise it with `gen demo {option} N`" if option else ""),
                           e.argument) from None
        except (ValueError, TypeError, OverflowError) as e:  # a check that is no GenError yet: still the caller's
            from gen.runtime.arguments import argument_in

            raise GenError(f"bad arguments: {e}", argument_in(str(e))) from None

    # -- admission -----------------------------------------------------------------------------
    def admit(self) -> None:
        """Take a place (running or waiting), or raise Busy."""
        with self._lock:
            if self._admitted >= self.concurrency + self.queue:
                raise Busy(max(1.0, self._last_seconds))
            self._admitted += 1

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.runs[outcome] += 1

    def release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def run(self, arguments: dict, precision: str | None, cancel: threading.Event, on_step=None) -> tuple[np.ndarray, float]:
        """Images (uint8 NHWC) for one admitted request, once a slot is free; seconds it took."""
        try:
            while not self._slots.acquire(timeout=0.1):
                if cancel.is_set():
                    raise Cancelled()
            try:
                if cancel.is_set():
                    raise Cancelled()
                sampler = self.sampler(precision)

                def step(i, steps, x0):
                    if cancel.is_set():
                        raise Cancelled()
                    if on_step is not None:
                        on_step(i, steps, x0)

                t0 = time.perf_counter()
                steps = {"on_step": step} if sampler.source.takes_on_step else {}  # a served model reports none
                images = sampler.generate(output="uint8", **arguments, **steps)
                seconds = time.perf_counter() - t0
                self._last_seconds = seconds
                self._count("completed")
                return images, seconds
            finally:
                self._slots.release()
        except Cancelled:  # while waiting for a slot or between steps
            self._count("cancelled")
            raise
        except Exception:
            self._count("failed")
            raise
        finally:
            self.release()


DEMO_LIMIT_OPTIONS = {"n": "--max-batch", "steps": "--max-steps"}


def open_models(bundles: list[str], url: str | None, model: str | None, backend: str, concurrency: int,
                queue: int, threads: int | None = None, limits: dict | None = None) -> dict[str, DemoModel]:
    """Name each model (the bundle folder's name; a served model's own) and open it."""
    from pathlib import Path

    if concurrency < 1 or queue < 0:
        raise GenError(f"--concurrency must be >= 1 and --queue >= 0, got {concurrency} and {queue}")
    models = {}
    for path in bundles:
        name = base = Path(path).resolve().name
        i = 2
        while name in models:
            name, i = f"{base}-{i}", i + 1
        models[name] = DemoModel(name, path, {"backend": backend, "threads": threads, "limits": limits},
                                 concurrency=concurrency, queue=queue)
    if url:
        if not model:
            raise GenError("--url needs --model NAME: the pipeline model on that server")
        models[model] = DemoModel(model, url, {"backend": "triton", "model": model}, concurrency=concurrency, queue=queue)
    if not models:
        raise GenError("give at least one BUNDLE directory, or --url with --model")
    return models
