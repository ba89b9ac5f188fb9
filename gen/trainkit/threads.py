"""Threads for training that give way when another job wants the same cores.

Measured here (2 cores, `gen train ddpm`): alone 12.35 steps/s; two runs at once 2.44 each (20% of
solo, where a fair share is 50%), because each spins its OpenMP threads waiting for cores the other
holds. `OMP_WAIT_POLICY=PASSIVE` made the pair fair but cost 41% alone, and spin counts helped one
case and ruined the other: no fixed setting wins both. So the thread count adapts instead: every few
seconds the governor measures what *other* processes took of the CPU (gen.runtime.host.LoadWatch)
and trains on the cores left over, going back up when they are free again. Two governed runs settle
at one thread each, which spin on nobody. `--threads N` (or OMP_NUM_THREADS in the environment) pins
the count and turns this off: a run's last bits depend on its thread count, so a pinned count is
what makes a run bitwise reproducible.
"""

from __future__ import annotations

import os
import time
from typing import Callable

CHECK_SECONDS = 2.0  # how often the other processes' load is measured (a window long enough to trust)


class ThreadGovernor:
    def __init__(self, requested: int | None = None, log: Callable[[str], None] = print):
        import torch

        from gen.runtime.host import LoadWatch, usable_cores

        self._torch, self._watch_type, self.log = torch, LoadWatch, log
        self.cores = usable_cores()
        env = os.environ.get("OMP_NUM_THREADS", "")
        requested = requested or (int(env) if env.isdigit() and int(env) > 0 else None)
        self.pinned = requested is not None
        self.threads = requested or self.cores
        torch.set_num_threads(self.threads)
        self._watch, self._since = LoadWatch().start(), time.monotonic()

    def describe(self) -> str:
        return (f"{self.threads} thread{'s' * (self.threads != 1)}"
                + (" (pinned: --threads or OMP_NUM_THREADS)" if self.pinned else f" of {self.cores} usable cores, fewer while other jobs use them"))

    def tick(self) -> None:
        """Called once per step; measures and adapts at most every CHECK_SECONDS."""
        if self.pinned or self.cores == 1 or time.monotonic() - self._since < CHECK_SECONDS:
            return
        others = self._watch.stop().get("others_cores")
        self._watch, self._since = self._watch_type().start(), time.monotonic()
        if others is None:
            return
        want = max(1, min(self.cores, round(self.cores - others)))
        if want != self.threads:
            self.log(f"{'other jobs use' if want < self.threads else 'now free:'} about "
                     f"{others if want < self.threads else self.cores - others:.1f} core(s): training on {want} "
                     f"thread{'s' * (want != 1)} (was {self.threads})")
            self.threads = want
            self._torch.set_num_threads(want)
