"""Training threads that give way when another job wants the same cores (gen.runtime.threads says why).

Measured here (2 cores, `gen train ddpm`): alone 12.35 steps/s; two runs at once 2.44 each (20% of
solo, where a fair share is 50%), because each spins its OpenMP threads waiting for cores the other
holds; `OMP_WAIT_POLICY=PASSIVE` made the pair fair but cost 41% alone. Two governed runs settle at
one thread each, which spin on nobody. `--threads N` (or OMP_NUM_THREADS) pins the count.
"""

from __future__ import annotations

from typing import Callable


class ThreadGovernor:
    """torch's thread count, following gen.runtime.threads.ThreadShare once per training step."""

    def __init__(self, requested: int | None = None, log: Callable[[str], None] = print):
        import torch

        from gen.runtime.threads import ThreadShare

        self._torch, self.log = torch, log
        self.share = ThreadShare(requested)
        torch.set_num_threads(self.share.threads)
        self.share.adapt("training")  # the first window starts now

    def describe(self) -> str:
        return self.share.describe()

    def tick(self) -> None:
        """Called once per step; measures and adapts at most every CHECK_SECONDS."""
        change = self.share.adapt("training")
        if change:
            self.log(change)
            self._torch.set_num_threads(self.share.threads)
