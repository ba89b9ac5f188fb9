"""Thread counts that give way when another job wants the same cores, for training and sampling alike.

Measured here (2 cores): two jobs that each run as many threads as there are cores spin on cores the
other holds, and keep far less than a fair half of their solo speed — training 18-20%, sampling
(`gen bench`, ONNX Runtime, digits DDPM) 29-37%. Spin-wait settings (OMP_WAIT_POLICY, ORT's
allow_spinning) helped the pair and cost the solo run 20-40%: no fixed setting wins both. One thread
each spins on nobody: a pair of 1-thread samplers keeps 70% of the 2-thread solo speed. So the count
adapts: every CHECK_SECONDS, what *other* processes took of the CPU is measured
(gen.runtime.host.LoadWatch) and the work runs on the cores left over, going back up when they free.

A count asked for (`--threads N`, `threads=`, or OMP_NUM_THREADS in the environment) is pinned and
never changes: a run's last bits can depend on its thread count, so a pinned count is what makes a
run reproducible bit for bit.
"""

from __future__ import annotations

import os
import threading
import time

CHECK_SECONDS = 2.0  # how often the other processes' load is measured (a window long enough to trust)


def asked_threads(requested: int | None) -> int | None:
    """The count the user pinned: the argument, else OMP_NUM_THREADS, else None (adapt)."""
    if requested:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else None


def snapped(want: int, cores: int) -> int:
    """`want` rounded down to a power of two (or all the cores): backends keep a session per count,
    so a many-core host must not open one for every count from 1 to its cores."""
    return cores if want >= cores else 1 << (want.bit_length() - 1)


class ThreadShare:
    """The thread count to run on now; `adapt()` re-measures at most every CHECK_SECONDS."""

    def __init__(self, requested: int | None = None, default: int | None = None, adapts: bool = True):
        from gen.runtime.host import usable_cores

        self.cores = default or usable_cores()
        asked = asked_threads(requested)
        self.asked, self.pinned = asked is not None, asked is not None or not adapts
        self.threads = asked or self.cores
        self.others_cores: float | None = None  # what the last check measured
        self._watch, self._since = None, time.monotonic()
        self._lock = threading.Lock()  # request threads of one server share a backend

    def describe(self) -> str:
        many = "s" * (self.threads != 1)
        if self.asked:
            return f"{self.threads} thread{many} (pinned: --threads or OMP_NUM_THREADS)"
        if self.pinned:
            return f"{self.threads} thread{many}"
        return f"{self.threads} thread{many} of {self.cores} usable cores, fewer while other jobs use them"

    def adapt(self, work: str) -> str | None:
        """Measure (when a window has passed) and adapt; what changed, in words naming the `work`
        ("training", "sampling"), or None when the count stays."""
        if self.pinned or self.cores == 1:
            return None
        with self._lock:
            was = self.threads
            others = self._measure()
            if others is None:
                return None
            self.threads = snapped(max(1, min(self.cores, round(self.cores - others))), self.cores)
        if self.threads == was:
            return None
        fewer = self.threads < was
        return (f"{'other jobs use' if fewer else 'now free:'} about {others if fewer else self.cores - others:.1f} "
                f"core(s): {work} on {self.threads} thread{'s' * (self.threads != 1)} (was {was})")

    def _measure(self) -> float | None:
        """Other processes' cores over the window that just ended, or None while it runs (or unreadable)."""
        if self._watch is None:  # the first window starts at the first call, not at construction
            from gen.runtime.host import LoadWatch

            self._watch, self._since = LoadWatch().start(), time.monotonic()
            return None
        if time.monotonic() - self._since < CHECK_SECONDS:
            return None
        others = self._watch.stop().get("others_cores")
        self._watch, self._since = type(self._watch)().start(), time.monotonic()
        if others is not None:
            self.others_cores = others
        return others
