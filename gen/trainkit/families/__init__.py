"""Model families, training side: one module per family, each exposing a `Trainer` registered under
the family's name (the name its runtime and nets specs use). The surface:

    Trainer(config)                      build the nets from a run's config (no data needed)
    Trainer.DEFAULTS                     the family's hyper-parameters
    STAGES (optional)                    later stages trained from a finished run (the VQ-VAE's prior)
    Trainer.complete_config(config, given)  family rules for defaults that depend on other options
    .modules / .optimizers               what a checkpoint saves
    .train_step(batch, g, step) -> dict  one optimisation step; `batch(g)` draws (x, y)
    .sampling_weights() / .load_sampling_weights(tensors)
    .sample(n, labels, g, **options)     images in [-1, 1] (sample grids during training)

Every module here that defines `Trainer` is a plug-in; modules are imported only when asked for.
"""

from __future__ import annotations

import importlib
import pkgutil

from gen.errors import GenError


def families() -> tuple[str, ...]:
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)))


# runs of the Stable Diffusion trainers: adaptations of a base, exported with it, not trained end to end here
SD_RUN_EXPORTS = {"sd-lora": "gen export --model sd-lora --lora RUN", "lcm-lora": "gen export --model sd-lora --lora RUN",
                  "textual-inversion": "gen export --model sd --textual-inversion RUN",
                  "dreambooth": "gen export --model sd-lora --lora RUN (a --lora run) or gen export --model sd --base RUN"}


def refuse_sd_run(family: str, path) -> None:
    if family in SD_RUN_EXPORTS:
        raise GenError(f"{path} holds an adaptation of a Stable Diffusion base ({family}), which gen does not train "
                       f"further or score here: export it with `{SD_RUN_EXPORTS[family].replace('RUN', str(path))}`")


def trainer_class(family: str):
    refuse_sd_run(family, "RUN")
    if family not in families():
        raise GenError(f"unknown model family {family!r}; choose one of {', '.join(families())}")
    module = importlib.import_module(f"{__name__}.{family}")
    cls = getattr(module, "Trainer", None)
    if cls is None:
        raise GenError(f"gen.trainkit.families.{family} defines no Trainer")
    return cls


def trainer_for(config: dict):
    """The trainer class of a run's config: the family's Trainer, or, for a later stage of a family
    trained in stages (`config["stage"]`, e.g. the VQ-VAE's prior), that stage's trainer from the
    family module's `STAGES` (stage name -> a function returning the class, imported when asked)."""
    cls = trainer_class(config["family"])
    stage = config.get("stage")
    if stage is None:
        return cls
    stages = getattr(importlib.import_module(f"{__name__}.{config['family']}"), "STAGES", {})
    if stage not in stages:
        raise GenError(f"{config['family']} has no training stage {stage!r}")
    return stages[stage]()


def defaults(family: str) -> dict:
    return dict(trainer_class(family).DEFAULTS)


def declared_defaults(family: str) -> dict:
    """A trainer's DEFAULTS read from its module's source, without importing it (and torch): what
    `gen train --help` shows, so the defaults are stated once and help stays instant."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parent / f"{family}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DEFAULTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}
