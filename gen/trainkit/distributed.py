"""Data-parallel training over processes: `torchrun --nproc_per_node N -m gen train ...` (or
`accelerate launch --multi_gpu --num_processes N -m gen train ...`, which starts torchrun; tested).

Every rank builds the same model from the same seed and draws the same global batches of indices
(from a generator every rank seeds alike); each trains on its shard (rows rank, rank + N, ...) with
its own noise. Each parameter's gradient is averaged over the ranks as soon as backward has
accumulated it (a post-accumulate-grad hook, all-reduce), so clipping and the optimizer see the
global batch's gradient: a step without noise is the step one process would take on the whole global
batch, up to summation order. That is DistributedDataParallel's arithmetic without wrapping each
trainer's modules, so every family's trainer runs unchanged. After each step every buffer (batch-norm
statistics, the VQ-VAE's EMA codebook) is broadcast from rank 0, as DDP's broadcast_buffers does: they
follow rank 0's shard. Rank 0 alone writes the run (config, logs, sample grids, checkpoints, weights).
gen's trainers run on the CPU, so the process group is gloo (tested with 2 processes); more
processes per host, or several hosts, scale the same way. The SD trainers (sd-lora, dreambooth,
textual-inversion, lcm-lora) do not go through this loop and refuse to run under a launcher.
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


def launched_processes() -> int:
    """How many processes the launcher (torchrun, accelerate launch) started; 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank as the launcher set it; 0 without one."""
    return int(os.environ.get("RANK", "0"))


def world() -> World:
    """This process's place, from the launcher's environment; joins the process group when there
    is more than one process."""
    if launched_processes() <= 1:
        return World()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")  # the trainers' tensors live on the CPU
    return World(dist.get_rank(), dist.get_world_size())


def refuse_launcher(command: str) -> None:
    """For trainers outside the shared loop: under torchrun every process would run the whole job."""
    if launched_processes() > 1:
        raise GenError(f"`gen {command}` does not run data-parallel; start it without torchrun / accelerate launch")


def check_batch(batch_size: int, w: World) -> None:
    if batch_size % w.size:
        raise GenError(f"--batch-size {batch_size} is the global batch and must divide among the {w.size} processes "
                       f"(use a multiple of {w.size})", "batch_size")


def average_gradients(modules: dict, w: World) -> None:
    """Each trainable parameter's gradient becomes its mean over the ranks once backward has
    accumulated it. Averaging is linear and a mean is the same on every rank, so a gradient built
    by two backward passes (a penalty term) is still the mean of the ranks' sums."""
    import torch.distributed as dist

    def hook(p):
        dist.all_reduce(p.grad)
        p.grad.div_(w.size)

    for m in modules.values():
        for p in m.parameters():
            if p.requires_grad:
                p.register_post_accumulate_grad_hook(hook)


def mean_logs(logs: dict, w: World) -> dict:
    """The step's logged figures averaged over the ranks (each saw its shard)."""
    import torch
    import torch.distributed as dist

    keys = sorted(logs)
    values = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(values)
    return {k: float(v) / w.size for k, v in zip(keys, values)}


def broadcast_buffers(modules: dict) -> None:
    """Rank 0's buffers everywhere (after each step)."""
    import torch.distributed as dist

    for m in modules.values():
        for b in m.buffers():
            dist.broadcast(b, 0)


def finish(w: World, ok: bool) -> None:
    """Leave the process group: after a barrier when this rank finished, at once when it failed (a
    barrier would wait for ranks stuck in a collective; the launcher stops them)."""
    if w.size > 1:
        import torch.distributed as dist

        if ok:
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
