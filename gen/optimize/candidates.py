"""What a DDPM teacher allows: itself at its default sampling (the reference) and with the best few-step
scheduler (DPM-Solver++, 4-16 steps: no training), and few-step students at the step counts they were
distilled for and below (gen distill progressive / consistency, or runs given with --student)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gen.errors import GenError

TEACHER = "teacher"
TEACHER_FEW_STEPS = (("dpm++", 4), ("dpm++", 8), ("dpm++", 16))  # the teacher's own shortcuts
# the students gen distils when none is given: each method's defaults (a 4-step progressive student,
# a consistency student sampled at 1, 2 and 4 steps); docs/RESULTS.md "Few-step students" has their figures
DISTILL = ("progressive", "consistency")


@dataclass(frozen=True)
class Candidate:
    model: str  # TEACHER or a student's name
    steps: int
    scheduler: Optional[str] = None  # None: the model's own default
    decoder: Optional[str] = None  # latent diffusion: "tiny" for the distilled tiny decoder; None: the full one

    @property
    def name(self) -> str:
        tiny = ", tiny decoder" if self.decoder == "tiny" else ""
        return f"{self.model} {self.scheduler + ' ' if self.scheduler else ''}{self.steps} steps{tiny}"

    def options(self) -> dict:
        return {"steps": self.steps, **({"scheduler": self.scheduler} if self.scheduler else {}),
                **({"decoder": self.decoder} if self.decoder else {})}


def teacher_config(run: str) -> dict:
    """The teacher's run config, refused unless it is a diffusion teacher gen can distil."""
    from pathlib import Path

    from gen.fileio import read_json

    path = Path(run) / "config.json"
    if not path.is_file():
        raise GenError(f"{run} is not a run directory (no config.json): gen optimize takes a `gen train ddpm` run", "source")
    config = read_json(path, "run config")
    from gen.trainkit.families import config_class

    if not config_class(config.get("family", "")).teaches or config.get("stage"):
        raise GenError(f"{run} is a {config.get('family')} run: gen optimize cuts diffusion steps, so it takes a diffusion "
                       "teacher (`gen train ddpm`); for other bundles `gen tune BUNDLE` picks backends and precisions", "source")
    if config.get("distill"):
        raise GenError(f"{run} is already a {config['distill']['method']} student: pass its teacher as SOURCE and this run "
                       "as --student", "source")
    return config


def candidates(teacher_steps: int, students: dict[str, dict]) -> list[Candidate]:
    """`students`: name -> its distill record (method, steps). The reference (the teacher at its default) first."""
    out = [Candidate(TEACHER, teacher_steps)]
    out += [Candidate(TEACHER, steps, scheduler) for scheduler, steps in TEACHER_FEW_STEPS if steps < teacher_steps]
    for name, record in students.items():
        top = int(record["steps"])
        counts = (1, 2, 4) if record["method"] == "consistency" else sorted({top, max(1, top // 2)})
        out += [Candidate(name, s) for s in counts if s <= max(top, 4)]
    return out
