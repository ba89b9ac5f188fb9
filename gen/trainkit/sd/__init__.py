"""The Stable Diffusion trainers: adaptations of a base pipeline (LoRA, LCM-LoRA, DreamBooth,
textual inversion), sharing base.py. Their runs are exported with the base (`gen export --model`),
not trained further or scored by `gen train` / `gen eval`: each trainer module declares its kind of
run (`RUN_KIND`), so the run-directory code can say how to export one without naming any.
"""

from __future__ import annotations

from dataclasses import dataclass

from gen.errors import GenError


@dataclass(frozen=True)
class SdRunKind:
    name: str  # the "family" its runs record in config.json
    export: str  # the command that exports one; RUN stands for the run's path


def run_kinds() -> dict[str, SdRunKind]:
    from gen.plugins import discover

    return discover(__path__, __name__, "RUN_KIND", SdRunKind)


def refuse_sd_run(family: str, path) -> None:
    kind = run_kinds().get(family)
    if kind is not None:
        raise GenError(f"{path} holds an adaptation of a Stable Diffusion base ({family}), which gen does not train "
                       f"further or score here: export it with `{kind.export.replace('RUN', str(path))}`")
