"""The training loop shared by every family: deterministic per-step randomness, checkpoints, logs.

Each step draws its batch and noise from a generator seeded by (seed, step), so a run resumed from
a checkpoint at step k replays steps k+1.. exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen.errors import GenError, with_article
from gen.trainkit.checks import check_lr, check_positive_ints
from gen.trainkit.config import PAIRED, UNPAIRED, run_config
from gen.trainkit.data import Dataset, load_dataset
from gen.trainkit.defaults import LOOP
from gen.trainkit.families import config_class, trainer_for
from gen.trainkit.rundir import RunDir

GRID_SIZE = 64


def step_generator(seed: int, step: int):
    import torch

    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def build_config(family: str, data: Dataset, data_spec: str, overrides: dict) -> dict:
    """The run's config.json: the family's typed config of the options given, checked, with the data's facts."""
    return run_config(config_class(family).from_options(overrides), data, data_spec)


def load_run_data(config: dict) -> Dataset:
    """The data a run was trained on, as its config describes it (resume, evaluation)."""
    cls = config_class(config["family"])
    if cls.loader:
        return cls.load_data(config["data"], config["image_size"], config["channels"])
    kind = cls.data
    return load_dataset(config["data"], config["image_size"], config["channels"], paired=kind == PAIRED,
                        direction=config.get("direction"), side_by_side=bool(config.get("side_by_side")),
                        data_b=config.get("data_b") if kind == UNPAIRED else None)


def stage_source(run_path: str, family: str, command: str, purpose: str, defaults: dict, options: dict,
                 positive: tuple[str, ...]):
    """(RunDir, its config, the stage's options over `defaults`) for a later training stage on a
    finished `family` run (the VQ-VAE's prior, a DDPM's noisy classifier), after the checks every
    stage makes: known options, the right kind of run, positive counts, a positive finite lr."""
    unknown = set(options) - set(defaults) - set(LOOP)
    if unknown:
        raise GenError(f"unknown options for {command}: {', '.join(sorted(unknown))}")
    source = RunDir(run_path)
    config = source.read_config()
    if config["family"] != family or config.get("stage"):
        what = f"a {config['stage']} run" if config.get("stage") else f"{with_article(config['family'])} run"
        raise GenError(f"{run_path} is {what}; {purpose}")
    o = {**defaults, **options}
    check_positive_ints(o, positive)
    check_lr(o)
    return source, config, o


def make_trainer(config: dict):
    try:
        return trainer_for(config)(config)
    except ValueError as e:
        raise GenError(str(e)) from None


def grid_labels(config: dict, n: int):
    import torch

    if not config.get("conditional"):
        return None
    return torch.arange(n) % config["num_classes"]


def train(family: str, data_spec: str, out: str, overrides: dict, image_size: int | None = None,
          resume: bool = False, force: bool = False, progress: bool = True, threads: int | None = None) -> RunDir:
    """Train into `out` (one writer at a time: a second `gen train` into it fails at once). `threads`
    pins torch's thread count; by default it adapts to other jobs (gen.runtime.threads)."""

    def fresh():
        cls = config_class(family)  # an UNPAIRED family's config has `data_b`, domain B
        data_b = (overrides.get("data_b") or cls.defaults()["data_b"]) if cls.data == UNPAIRED else None

        def load(size):
            if cls.loader:  # data the family defines itself
                return cls.load_data(data_spec, size)
            return load_dataset(data_spec, size, paired=cls.data == PAIRED, data_b=data_b,
                                direction=overrides.get("direction"), side_by_side=bool(overrides.get("side_by_side")))

        data = load(image_size)
        if image_size is None and data.image_size < cls.min_image_size:  # e.g. the 8x8 digits for a denoiser
            data = load(cls.min_image_size)
            data.notes.append(f"image size {cls.min_image_size}: {family} upscales smaller images to it by default; "
                              "choose another with --image-size")
        return build_config(family, data, data_spec, overrides), data

    folders = [d for d in (data_spec, overrides.get("data_b")) if d]  # --data DIR (a name like digits is skipped)
    return train_with(out, family, fresh, overrides, resume=resume, force=force, progress=progress, sources=folders,
                      threads=threads)


def train_with(out: str, family: str, fresh, overrides: dict, resume: bool = False, force: bool = False,
               progress: bool = True, label: str | None = None, extend: str | None = None, sources=(),
               threads: int | None = None) -> RunDir:
    """The loop every trainer shares (training and distillation): `fresh()` gives a new run's
    (config, data); a resumed run reads its own config. One writer at a time per `out`.
    `sources`: the command's inputs (a teacher run, a data folder), which `out` must not overlap."""
    from gen.outputs import absolute, output_lock, remove_stale
    from gen.trainkit.distributed import finish, world

    try:
        RunDir(out).check(resume=resume, force=force, sources=sources)
    except GenError:
        from gen.outputs import busy_message, writer_of

        holder = writer_of(out)  # a run being written has no checkpoint yet: name its writer instead
        if holder:
            raise GenError(busy_message("--out", out, holder)) from None
        raise
    existed = Path(out).exists()
    w = world()  # under torchrun: this process's rank; rank 0 alone writes (gen.trainkit.distributed)
    where = Stopped(out=str(out), state_path=str(RunDir(out).state_path))
    with output_lock(out) if w.main else contextlib.nullcontext():
        try:
            run = _train(family, fresh, out, overrides, resume, force, progress, label or f"train {family}", w, extend,
                         threads, where)
        except BaseException as e:
            if w.main:
                remove_stale(absolute(out))  # a replacement that did not finish leaves no staging behind
                if not resume:
                    RunDir(out).discard_unstarted(keep_dir=existed)
                if isinstance(e, KeyboardInterrupt):  # Ctrl-C or SIGTERM: the CLI says what was kept
                    e.gen_stopped = where
            finish(w, ok=False)
            raise
        finish(w, ok=True)
        return run


@dataclass
class Stopped:
    """How far a run got when it was stopped (Ctrl-C, SIGTERM), for the notice of what it kept:
    the step reached, the step of the checkpoint on disk (None: none), whether it was replacing a run
    (--force: the new one is discarded, the old one untouched)."""

    out: str
    state_path: str
    step: int = 0
    total: int | None = None
    checkpoint: int | None = None
    every: int | None = None
    replacing: bool = False


WARM_STEPS = 10  # steps left out of the time estimate (the first ones allocate and warm caches)
ESTIMATE_RECHECK_S = 30  # the rate is compared with the estimate's this often
ESTIMATE_CHANGE = 0.3  # a rate this much off (30%) prints a new estimate: one printed once went stale


def _train(family, fresh, out, overrides, resume, force, progress, label, w, extend=None, threads=None,
           where=None) -> RunDir:
    """`extend`: how to train a finished run further, where it is not a larger --steps; `where`: a
    Stopped that follows the progress."""
    import torch
    from tqdm import tqdm

    from gen.trainkit.threads import ThreadGovernor

    target = RunDir(out)
    run, config, data, trainer, start = _open_run(target, family, fresh, overrides, resume, force, progress, w, extend)
    where = where or Stopped(out=str(out), state_path=str(target.state_path))
    where.step, where.total, where.every = start, config["steps"], config["checkpoint_every"]
    where.checkpoint, where.replacing = (start if resume else None), run is not target
    run.write_config(config)
    batches = Batches(torch.from_numpy(data.train_x), torch.from_numpy(data.train_y), config["batch_size"], w)
    if w.size > 1:
        from gen.trainkit import distributed

        distributed.average_gradients(trainer.modules, w)

    def checkpoint(step):
        run.save_state(*_pack(trainer, step))
        where.checkpoint = step

    steps, t0, done = config["steps"], time.perf_counter(), start
    last_log = (t0, start)  # metrics.jsonl's steps_per_s is the rate since the previous record
    bar = tqdm(total=steps, initial=start, desc=label, unit="step", disable=not progress or not w.main, dynamic_ncols=True)
    estimate = Estimate(steps, start, bar.write, on=progress and w.main)
    governor = ThreadGovernor(threads, log=bar.write) if w.size == 1 else None  # ranks keep torchrun's pinning
    if governor and progress:
        bar.write(f"training on {governor.describe()}")
    for step in range(start, steps):
        logs = _step(trainer, batches, config["seed"], step, w)
        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
        if bad:
            bar.close()
            raise _diverged(bad, step, where.checkpoint or 0, out, replacing=run is not target)
        done = where.step = step + 1
        if governor:
            governor.tick()
        bar.update(1)
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
        now = time.perf_counter()
        estimate.tick(done, now)
        if done % config["log_every"] == 0 or done == steps:
            rate = (done - last_log[1]) / max(now - last_log[0], 1e-9)
            last_log = (now, done)
            run.log({"step": done, **{k: round(v, 6) for k, v in logs.items()}, "steps_per_s": round(rate, 3),
                     "elapsed_s": round(now - t0, 1)})
        if done % config["sample_every"] == 0 and done < steps:
            _save_samples(trainer, config, w, run.path / "samples" / f"step_{done:06d}.png")
        if done % config["checkpoint_every"] == 0 and done < steps:
            checkpoint(done)
    bar.close()
    run.save_weights(trainer.sampling_weights(), config)
    checkpoint(max(done, start))
    _save_samples(trainer, config, w, run.path / "samples.png")
    for k in trainer.grid_steps:  # a few-step student: its quality at each step count
        _save_samples(trainer, config, w, run.path / f"samples_{k}steps.png", steps=k)
    if w.main:
        target.commit(run)
    return target


def _open_run(target: RunDir, family, fresh, overrides, resume, force, progress, w, extend):
    """(the run to write, its config, its data, its trainer, the step it starts from): a resumed
    run's own config and checkpoint, or a fresh run's claim of the directory."""
    import torch

    from gen.trainkit import distributed
    from gen.trainkit.checkpoint import unpack

    if w.main:  # another rank would race rank 0's claim of the directory
        target.check(resume=resume, force=force)
    run = target if w.main else distributed.DiscardedRun(target)
    if resume:
        config = run.read_config()
        if config["family"] != family:
            raise GenError(f"--resume: {target.path} is {with_article(config['family'])} run, not {family}")
        if overrides.get("steps") is not None:
            config["steps"] = overrides["steps"]
            check_positive_ints(config, ("steps",))
        data = load_run_data(config)
    else:
        config, data = fresh()
        for note in data.notes if progress else ():
            print(note, flush=True)
    if w.size > 1:
        distributed.check_batch(config["batch_size"], w)
    torch.manual_seed(config["seed"])  # initial weights; training itself draws only from step_generator
    trainer = make_trainer(config)
    trainer.attach_data(data)  # e.g. pix2pix's sample grids translate held-out inputs
    start = 0
    if resume:
        tensors, meta = run.load_state()
        start = unpack(tensors, meta, trainer.modules, trainer.optimizers, str(run.state_path))
        if start >= config["steps"]:  # nothing to train: leave the run exactly as it is
            raise GenError(f"--resume: {target.path} has already trained {start} steps (it asks for {config['steps']}): "
                           "nothing to do; " + (extend or f"give --steps above {start} to train it further"))
        run.truncate_metrics(start)
    else:
        trainer.initialize()  # e.g. a student starts as its teacher
        run = target.claim(force) if w.main else run
    return run, config, data, trainer, start


class Batches:
    """`batch(g)`: the step's batch rows for this rank (all of them in one process), drawn from `g`;
    with several ranks the global batch comes from the step's shared generator (`shared`)."""

    def __init__(self, x, y, batch_size: int, w):
        self.x, self.y, self.batch_size, self.w = x, y, batch_size, w
        self.shared = None

    def __call__(self, g):
        import torch

        idx = torch.randint(len(self.x), (self.batch_size,), generator=self.shared or g)[self.w.rank::self.w.size]
        return self.x[idx], self.y[idx]


def _step(trainer, batches: Batches, seed: int, step: int, w) -> dict:
    """One optimisation step from the step's own generator (so a resumed run replays it exactly)."""
    import torch

    g = step_generator(seed, step)
    if w.size > 1:  # global batches from the step's generator; each rank's noise from its own
        batches.shared = g
        g = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1009 + w.rank + 1) % 2**63)
    logs = trainer.train_step(batches, g, step)
    if w.size > 1:
        from gen.trainkit import distributed

        logs = distributed.mean_logs(logs, w)
        distributed.broadcast_buffers(trainer.modules)
    return logs


def _diverged(bad: dict, step: int, last_checkpoint: int, out, replacing: bool) -> GenError:
    k, v = next(iter(bad.items()))
    kept = (f"the last checkpoint (step {last_checkpoint}) is kept: --resume continues from it"
            if last_checkpoint else f"no checkpoint was written yet, so {out} is left as it was")
    if replacing:
        kept = f"the run being replaced in {out} is untouched"
    return GenError(f"training diverged at step {step + 1}: {k} = {v}; {kept}. Lower --lr or change the loss settings")


def _pack(trainer, step: int):
    from gen.trainkit.checkpoint import pack

    return pack(trainer.modules, trainer.optimizers, step)


def _save_samples(trainer, config: dict, w, path, **options) -> None:
    if not w.main:
        return
    import torch

    from gen.images import save_grid

    g = torch.Generator().manual_seed(config["seed"])
    save_grid(path, trainer.sample(GRID_SIZE, grid_labels(config, GRID_SIZE), g, **options).numpy(), nrow=8)


class Estimate:
    """The remaining time, said once the first WARM_STEPS steps are past (their allocations made an
    early estimate 25% long), then said again whenever the rate moves ESTIMATE_CHANGE off it (another
    job started or ended: one printed once went stale)."""

    def __init__(self, steps: int, start: int, write, on: bool = True):
        self.steps, self.start, self.write = steps, start, write
        self.done_estimating = not on
        self.warm = None  # (time, step) once WARM_STEPS steps are done: the estimate's rate is timed from there
        self.said, self.told = None, None  # (time, step) the rate is timed from, once estimated; the rate last printed

    def tick(self, done: int, now: float) -> None:
        steps = self.steps
        if not self.done_estimating and self.warm is None and done - self.start >= WARM_STEPS:
            self.warm = (now, done)
        elif not self.done_estimating and self.warm is not None and (done - self.warm[1] >= 50 or now - self.warm[0] > 10):
            self.done_estimating = True
            rate = (done - self.warm[1]) / (now - self.warm[0])
            self.said, self.told = (now, done), rate
            self.write(f"about {_duration((steps - done) / rate)} for the remaining {steps - done} steps at "
                       f"{rate:.2f} steps/s, as busy as the cores are now (another job makes it longer; this is "
                       "updated if the rate changes; --steps sets the total)")
        elif self.said is not None and now - self.said[0] >= ESTIMATE_RECHECK_S and done < steps:
            rate = (done - self.said[1]) / (now - self.said[0])  # of late: another job may have started or ended
            if abs(rate - self.told) > ESTIMATE_CHANGE * self.told:
                slower = rate < self.told
                self.write(f"now about {_duration((steps - done) / rate)} for the remaining {steps - done} steps at "
                           f"{rate:.2f} steps/s ({'slower' if slower else 'faster'} than the {self.told:.2f} steps/s "
                           f"estimated: the cores are {'busier' if slower else 'freer'})")
                self.told = rate
            self.said = (now, done)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def load_run(path: str):
    """A run's trainer with its sampling weights loaded: torch-side sampling, as during training
    (tests compare it with the shipped Sampler; `gen eval` and export use RunDir.build_components)."""
    run = RunDir(path)
    config = run.read_config()
    trainer = make_trainer(config)
    tensors = run.load_weights()
    try:
        trainer.load_sampling_weights(tensors)
    except RuntimeError as e:
        raise GenError(f"{run.weights_path} does not match {run.config_path}: {str(e).splitlines()[0]}") from None
    return run, config, trainer


def sample_run(trainer, config: dict, n: int, seed: int, labels=None, batch: int = 500, **options) -> np.ndarray:
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        lab = None if labels is None else torch.as_tensor(labels[i : i + batch])
        out.append(trainer.sample(min(batch, n - i), lab, g, **options).numpy())
    return np.concatenate(out)
