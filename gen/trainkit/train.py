"""The training loop shared by every family: deterministic per-step randomness, checkpoints, logs.

Each step draws its batch and noise from a generator seeded by (seed, step), so a run resumed from
a checkpoint at step k replays steps k+1.. exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import time

import numpy as np

from gen.errors import GenError
from gen.trainkit.data import Dataset, load_dataset
from gen.trainkit.defaults import LOOP
from gen.trainkit.families import defaults, trainer_class
from gen.trainkit.rundir import RunDir

GRID_SIZE = 64


def step_generator(seed: int, step: int):
    import torch

    return torch.Generator().manual_seed(seed * 1_000_003 + step)


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
        family=family, data=data_spec, image_size=data.image_size, channels=data.channels,
        num_classes=data.num_classes, class_names=data.class_names,
    )
    for key in ("steps", "batch_size", "sample_every", "checkpoint_every", "log_every", "n_critic", "latent_dim", "z_dim", "width"):
        _check_positive(config, key)
    if config["batch_size"] < 2:
        raise GenError(f"--batch-size must be at least 2 (batch statistics need two samples), got {config['batch_size']}")
    if not config["lr"] > 0:
        raise GenError(f"--lr must be positive, got {config['lr']}")
    size = config["image_size"]
    if size < 8 or size & (size - 1):
        raise GenError(f"--image-size must be a power of two >= 8 for these nets, got {size}")
    return config


def _check_positive(config: dict, key: str) -> None:
    if key in config and (not isinstance(config[key], int) or config[key] < 1):
        raise GenError(f"--{key.replace('_', '-')} must be at least 1, got {config[key]}")


def make_trainer(config: dict):
    try:
        return trainer_class(config["family"])(config)
    except ValueError as e:
        raise GenError(str(e)) from None


def grid_labels(config: dict, n: int):
    import torch

    if not config.get("conditional"):
        return None
    return torch.arange(n) % config["num_classes"]


def train(family: str, data_spec: str, out: str, overrides: dict, image_size: int | None = None,
          resume: bool = False, force: bool = False, progress: bool = True) -> RunDir:
    import torch
    from tqdm import tqdm

    from gen.images import save_grid
    from gen.trainkit.checkpoint import pack, unpack

    run = RunDir(out)
    run.check(resume=resume, force=force)
    if resume:
        config = run.read_config()
        if config["family"] != family:
            raise GenError(f"--resume: {out} is a {config['family']} run, not {family}")
        if overrides.get("steps") is not None:
            config["steps"] = overrides["steps"]
            _check_positive(config, "steps")
        data = load_dataset(config["data"], config["image_size"], config["channels"])
    else:
        data = load_dataset(data_spec, image_size)
        config = build_config(family, data, data_spec, overrides)
    torch.manual_seed(config["seed"])  # initial weights; training itself draws only from step_generator
    trainer = make_trainer(config)
    start = 0
    if resume:
        tensors, meta = run.load_state()
        start = unpack(tensors, meta, trainer.modules, trainer.optimizers, str(run.state_path))
        run.truncate_metrics(start)
    else:
        run.claim(force)
    run.write_config(config)

    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    bs = config["batch_size"]

    def batch(g):
        idx = torch.randint(len(x), (bs,), generator=g)
        return x[idx], y[idx]

    def save_samples(path):
        g = torch.Generator().manual_seed(config["seed"])
        save_grid(path, trainer.sample(GRID_SIZE, grid_labels(config, GRID_SIZE), g).numpy(), nrow=8)

    def checkpoint(step):
        run.save_state(*pack(trainer.modules, trainer.optimizers, step))

    steps, t0, done = config["steps"], time.perf_counter(), start
    bar = tqdm(total=steps, initial=start, desc=f"train {family}", unit="step", disable=not progress, dynamic_ncols=True)
    for step in range(start, steps):
        logs = trainer.train_step(batch, step_generator(config["seed"], step), step)
        done = step + 1
        bar.update(1)
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
        if done % config["log_every"] == 0 or done == steps:
            rate = (done - start) / (time.perf_counter() - t0)
            run.log({"step": done, **{k: round(v, 6) for k, v in logs.items()}, "steps_per_s": round(rate, 3)})
        if done % config["sample_every"] == 0 and done < steps:
            save_samples(run.path / "samples" / f"step_{done:06d}.png")
        if done % config["checkpoint_every"] == 0 and done < steps:
            checkpoint(done)
    bar.close()
    run.save_weights(trainer.sampling_weights(), config)
    checkpoint(max(done, start))
    save_samples(run.path / "samples.png")
    return run


def load_run(path: str):
    """Rebuild a trained run's sampler from its config and weights (for eval, export, grids)."""
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
