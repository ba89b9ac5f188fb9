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

from gen.errors import GenError, flag, with_article
from gen.trainkit.checks import check_lr, check_positive_ints
from gen.trainkit.data import Dataset, load_dataset
from gen.trainkit.defaults import LOOP
from gen.trainkit.families import defaults, trainer_class, trainer_for
from gen.trainkit.rundir import RunDir

GRID_SIZE = 64


def step_generator(seed: int, step: int):
    import torch

    return torch.Generator().manual_seed(seed * 1_000_003 + step)


# options that are loss weights, thresholds or warm-up counts (>= 0), and fractions (EMA decays, dropout rates)
NON_NEGATIVE = ("beta", "commitment", "cycle_weight", "gp_weight", "identity_weight", "l1_weight", "gan_weight", "r1_gamma",
                "dead_code_threshold", "warmup")
FRACTIONS = ("ema_decay", "ema_beta", "label_dropout")


def build_config(family: str, data: Dataset, data_spec: str, overrides: dict) -> dict:
    config = defaults(family)
    unknown = set(overrides) - set(config) - set(LOOP)
    if unknown:
        raise GenError(f"unknown options for {family}: {', '.join(sorted(unknown))}")
    config.update(LOOP)
    config.update({k: v for k, v in overrides.items() if v is not None})
    complete = getattr(trainer_class(family), "complete_config", None)
    if complete is not None:  # the family's rules for defaults that depend on other options
        complete(config, overrides)
    if config.get("conditional") and data.num_classes < 2:
        raise GenError(f"--conditional needs labelled data (class sub-folders); {data_spec} has none")
    config.update(
        family=family, data=data_spec, image_size=data.image_size, channels=data.channels - data.input_channels,
        num_classes=data.num_classes, class_names=data.class_names,
    )
    if data.input_channels:  # paired data: what the model reads, beside what it makes
        config["input_channels"] = data.input_channels
    check_positive_ints(config, ("steps", "batch_size", "sample_every", "checkpoint_every", "log_every", "n_critic",
                                 "latent_dim", "z_dim", "width", "blocks", "pool_size", "w_dim", "mapping_layers",
                                 "r1_every", "grid", "codebook_size", "code_dim", "timesteps"))
    if config["batch_size"] < 2:
        raise GenError(f"--batch-size must be at least 2 (batch statistics need two samples), got {config['batch_size']}")
    for key, value in config.items():  # --lr inf or --beta nan would train NaN weights
        if isinstance(value, float) and not math.isfinite(value):
            raise GenError(f"{flag(key)} must be a finite number, got {value}")
    check_lr(config)
    for key in NON_NEGATIVE:  # a negative loss weight would train the model away from its goal
        if isinstance(config.get(key), (int, float)) and config[key] < 0:
            raise GenError(f"{flag(key)} must be >= 0, got {config[key]}")
    for key in FRACTIONS:
        if isinstance(config.get(key), (int, float)) and not 0 <= config[key] < 1:
            raise GenError(f"{flag(key)} must be in [0, 1), got {config[key]}")
    size = config["image_size"]
    if size < 8 or size & (size - 1):
        raise GenError(f"--image-size must be a power of two >= 8 for these nets, got {size}")
    return config


def load_run_data(config: dict) -> Dataset:
    """The data a run was trained on, as its config describes it (resume, evaluation)."""
    return load_dataset(config["data"], config["image_size"], config["channels"],
                        paired=bool(config.get("input_channels")) and not config.get("data_b"),
                        direction=config.get("direction"), side_by_side=bool(config.get("side_by_side")),
                        data_b=config.get("data_b"))


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
        if config.get("distill"):  # a student: its family's nets, trained from a teacher
            from gen.trainkit.distill import trainer

            return trainer(config)
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
    pins torch's thread count; by default it adapts to other jobs (gen.trainkit.threads)."""

    def fresh():
        cls = trainer_class(family)
        data_b = (overrides.get("data_b") or cls.DEFAULTS["data_b"]) if getattr(cls, "unpaired_data", False) else None
        data = load_dataset(data_spec, image_size, paired=getattr(cls, "paired_data", False), data_b=data_b,
                            direction=overrides.get("direction"), side_by_side=bool(overrides.get("side_by_side")))
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

    from gen.images import save_grid
    from gen.trainkit import distributed
    from gen.trainkit.checkpoint import pack, unpack
    from gen.trainkit.threads import ThreadGovernor

    target = RunDir(out)
    if w.main:  # another rank would race rank 0's claim of the directory
        target.check(resume=resume, force=force)
    run = target if w.main else distributed.DiscardedRun(target)
    if resume:
        config = run.read_config()
        if config["family"] != family:
            raise GenError(f"--resume: {out} is {with_article(config['family'])} run, not {family}")
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
    if hasattr(trainer, "attach_data"):  # e.g. pix2pix's sample grids translate held-out inputs
        trainer.attach_data(data)
    if not resume and hasattr(trainer, "initialize"):  # e.g. a student starts as its teacher
        trainer.initialize()
    start = 0
    if resume:
        tensors, meta = run.load_state()
        start = unpack(tensors, meta, trainer.modules, trainer.optimizers, str(run.state_path))
        if start >= config["steps"]:  # nothing to train: leave the run exactly as it is
            raise GenError(f"--resume: {out} has already trained {start} steps (it asks for {config['steps']}): nothing to do; "
                           + (extend or f"give --steps above {start} to train it further"))
        run.truncate_metrics(start)
    else:
        run = target.claim(force) if w.main else run
    where = where or Stopped(out=str(out), state_path=str(target.state_path))
    where.step, where.total, where.every = start, config["steps"], config["checkpoint_every"]
    where.checkpoint, where.replacing = (start if resume else None), run is not target
    run.write_config(config)

    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    bs = config["batch_size"]
    if w.size > 1:
        distributed.average_gradients(trainer.modules, w)
    indices = {}  # with several ranks: the step's generator of global batches, alike on every rank

    def batch(g):  # the global batch's rows for this rank (all of them in one process)
        idx = torch.randint(len(x), (bs,), generator=indices.get("g", g))[w.rank::w.size]
        return x[idx], y[idx]

    def save_samples(path, **options):
        if not w.main:
            return
        g = torch.Generator().manual_seed(config["seed"])
        save_grid(path, trainer.sample(GRID_SIZE, grid_labels(config, GRID_SIZE), g, **options).numpy(), nrow=8)

    last_checkpoint = start

    def checkpoint(step):
        nonlocal last_checkpoint
        run.save_state(*pack(trainer.modules, trainer.optimizers, step))
        last_checkpoint = where.checkpoint = step

    steps, t0, done = config["steps"], time.perf_counter(), start
    last_log = (t0, start)  # metrics.jsonl's steps_per_s is the rate since the previous record
    bar = tqdm(total=steps, initial=start, desc=label, unit="step", disable=not progress or not w.main, dynamic_ncols=True)
    estimated = not progress or not w.main
    governor = ThreadGovernor(threads, log=bar.write) if w.size == 1 else None  # ranks keep torchrun's pinning
    if governor and progress:
        bar.write(f"training on {governor.describe()}")
    warm = None  # (time, step) once WARM_STEPS steps are done: the estimate's rate is timed from there
    said, told = None, None  # (time, step) the rate is timed from, once estimated; the rate last printed
    for step in range(start, steps):
        g = step_generator(config["seed"], step)
        if w.size > 1:  # global batches from the step's generator; each rank's noise from its own
            indices["g"] = g
            g = torch.Generator().manual_seed(((config["seed"] * 1_000_003 + step) * 1009 + w.rank + 1) % 2**63)
        logs = trainer.train_step(batch, g, step)
        if w.size > 1:
            logs = distributed.mean_logs(logs, w)
            distributed.broadcast_buffers(trainer.modules)
        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
        if bad:
            bar.close()
            k, v = next(iter(bad.items()))
            kept = (f"the last checkpoint (step {last_checkpoint}) is kept: --resume continues from it"
                    if last_checkpoint else f"no checkpoint was written yet, so {out} is left as it was")
            if run is not target:
                kept = f"the run being replaced in {out} is untouched"
            raise GenError(f"training diverged at step {step + 1}: {k} = {v}; {kept}. Lower --lr or change "
                           "the loss settings")
        done = where.step = step + 1
        if governor:
            governor.tick()
        bar.update(1)
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
        now = time.perf_counter()
        if not estimated and warm is None and done - start >= WARM_STEPS:
            warm = (now, done)
        elif not estimated and warm is not None and (done - warm[1] >= 50 or now - warm[0] > 10):
            # timed from past the first steps, whose allocations and caches made an early estimate 25% long
            estimated = True
            rate = (done - warm[1]) / (now - warm[0])
            said, told = (now, done), rate
            bar.write(f"about {_duration((steps - done) / rate)} for the remaining {steps - done} steps at "
                      f"{rate:.2f} steps/s, as busy as the cores are now (another job makes it longer; this is "
                      "updated if the rate changes; --steps sets the total)")
        elif said is not None and now - said[0] >= ESTIMATE_RECHECK_S and done < steps:
            rate = (done - said[1]) / (now - said[0])  # of late: another job may have started or ended
            if abs(rate - told) > ESTIMATE_CHANGE * told:
                slower = rate < told
                bar.write(f"now about {_duration((steps - done) / rate)} for the remaining {steps - done} steps at "
                          f"{rate:.2f} steps/s ({'slower' if slower else 'faster'} than the {told:.2f} steps/s "
                          f"estimated: the cores are {'busier' if slower else 'freer'})")
                told = rate
            said = (now, done)
        if done % config["log_every"] == 0 or done == steps:
            rate = (done - last_log[1]) / max(now - last_log[0], 1e-9)
            last_log = (now, done)
            run.log({"step": done, **{k: round(v, 6) for k, v in logs.items()}, "steps_per_s": round(rate, 3),
                     "elapsed_s": round(now - t0, 1)})
        if done % config["sample_every"] == 0 and done < steps:
            save_samples(run.path / "samples" / f"step_{done:06d}.png")
        if done % config["checkpoint_every"] == 0 and done < steps:
            checkpoint(done)
    bar.close()
    run.save_weights(trainer.sampling_weights(), config)
    checkpoint(max(done, start))
    save_samples(run.path / "samples.png")
    for k in getattr(trainer, "grid_steps", ()):  # a few-step student: its quality at each step count
        save_samples(run.path / f"samples_{k}steps.png", steps=k)
    if w.main:
        target.commit(run)
    return target


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
