"""One module per model family. Each exposes a Trainer with the same small surface:

    Trainer(config)                      build the nets from a run's config (no data needed)
    .modules / .optimizers               what a checkpoint saves
    .train_step(batch, g, step) -> dict  one optimisation step; `batch(g)` draws (x, y)
    .sampling_weights() / .load_sampling_weights(tensors)
    .sample(n, labels, g, **options)     images in [-1, 1]
"""

from __future__ import annotations

FAMILIES = ("gan", "vae", "ddpm")


def trainer_class(family: str):
    if family == "gan":
        from gen.trainkit.families.gan import GanTrainer as cls
    elif family == "vae":
        from gen.trainkit.families.vae import VaeTrainer as cls
    elif family == "ddpm":
        from gen.trainkit.families.ddpm import DdpmTrainer as cls
    else:
        from gen.errors import GenError

        raise GenError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return cls


def defaults(family: str) -> dict:
    return dict(trainer_class(family).DEFAULTS)
