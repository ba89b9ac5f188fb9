"""Model families, training side: one package per family here (or a module an installed package
names in the `gen.families.training` entry-point group, gen.plugins), each exposing `CONFIG`, its
typed, torch-free training config (gen.trainkit.config.TrainConfig), registered under the family's
name (the name its runtime and nets specs use). The config names its torch-side Trainer
(gen.trainkit.trainer.Trainer), imported only when training starts.

Nothing outside the family's modules names a family: `gen train NAME`, data loading, `gen eval` and
`gen distill` ask the config's capabilities (`data`, `labels`, `teaches`, `stages`).
"""

from __future__ import annotations

from gen.errors import GenError
from gen.trainkit.sd import refuse_sd_run

_REGISTRY: dict = {}

def _configs() -> dict:
    if not _REGISTRY:
        from gen.plugins import TRAINING, discover
        from gen.trainkit.config import TrainConfig

        _REGISTRY.update(discover(__path__, __name__, "CONFIG", TrainConfig, group=TRAINING))
    return _REGISTRY


def families() -> tuple[str, ...]:
    return tuple(sorted(_configs()))


def config_class(family: str):
    """The family's TrainConfig class (torch-free)."""
    if family not in _configs():
        refuse_sd_run(family, "RUN")
        raise GenError(f"unknown model family {family!r}; choose one of {', '.join(families())}")
    return _configs()[family]


def trainer_class(family: str):
    return config_class(family).trainer_class()


def trainer_for(config: dict):
    """The trainer class of a run's config: the family's Trainer; for a later stage of a family
    trained in stages (`config["stage"]`, e.g. the VQ-VAE's prior), that stage's trainer; for a
    few-step student (`config["distill"]`), its method's Student (gen.trainkit.distill.<method>, a
    plug-in found by name, imported on first use: torch)."""
    if config.get("distill"):
        import importlib

        return importlib.import_module(f"gen.trainkit.distill.{config['distill']['method']}").Student
    return config_class(config["family"]).trainer_class(config.get("stage"))


def defaults(family: str) -> dict:
    return config_class(family).defaults()
