"""Data-parallel training over processes: `torchrun --nproc_per_node N -m gen train ...` (or
`accelerate launch -m gen train ...`, which sets the same environment).

Every rank builds the same model from the same seed and draws the same global batch of indices
from the step's generator; each trains on its shard (rows rank, rank + N, ...), and before every
optimizer step the gradients are averaged over the ranks (all-reduce), so a step is the step one
process would take on the whole global batch, up to summation order. That is DistributedDataParallel's
arithmetic done at the optimizer instead of wrapping each trainer's modules, so every family's trainer
runs unchanged. Rank 0 alone writes the run (config, logs, sample grids, checkpoints, weights);
buffers (batch-norm statistics) are rank 0's, as DDP's broadcast_buffers makes them. The backend is
NCCL on CUDA and gloo on CPUs (tested with 2 CPU processes; multi-GPU is unverified here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gen.errors import GenError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def world() -> World:
    """This process's place, from the launcher's environment; joins the process group when there
    is more than one process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return World(dist.get_rank(), dist.get_world_size())


def check_batch(batch_size: int, w: World) -> None:
    if batch_size % w.size:
        raise GenError(f"--batch-size {batch_size} is the global batch and must divide among the {w.size} processes "
                       f"(use a multiple of {w.size})", "batch_size")


def average_gradients(optimizers: dict, w: World) -> None:
    """Before each optimizer step, replace every gradient by its mean over the ranks."""
    import torch.distributed as dist

    def hook(optimizer, args, kwargs):
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(w.size)

    for opt in optimizers.values():
        opt.register_step_pre_hook(hook)


def mean_logs(logs: dict, w: World) -> dict:
    """The step's logged figures averaged over the ranks (each saw its shard)."""
    import torch
    import torch.distributed as dist

    keys = sorted(logs)
    values = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(values)
    return {k: float(v) / w.size for k, v in zip(keys, values)}


def broadcast_buffers(modules: dict) -> None:
    """Rank 0's buffers everywhere (before anything is saved)."""
    import torch.distributed as dist

    for m in modules.values():
        for b in m.buffers():
            dist.broadcast(b, 0)


def finish(w: World) -> None:
    if w.size > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


class DiscardedRun:
    """The run as a rank other than 0 sees it: it reads the run (a resumed checkpoint) and writes nothing."""

    WRITES = ("claim", "commit", "write_config", "log", "save_state", "save_weights", "truncate_metrics")

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name):
        if name in self.WRITES:
            return lambda *args, **kwargs: None
        return getattr(self._target, name)
