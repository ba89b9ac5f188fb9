"""The chosen bundle: the chosen model's bundle with its sampling defaults set to the chosen steps and
scheduler (so `gen generate BUNDLE` samples as measured), this host's plan measured on it (gen tune, at
the measured batch and steps), and its end-to-end figure with the plan against the teacher's reference."""

from __future__ import annotations

import shutil
from pathlib import Path

from gen.optimize.candidates import Candidate


def set_defaults(bundle: Path, chosen: Candidate) -> None:
    """gen.json's sampling defaults rewritten through the schema (a bad value cannot be written)."""
    from gen.fileio import read_json
    from gen.runtime.manifest import MANIFEST, read_manifest, write_manifest

    data = read_json(bundle / MANIFEST, "bundle manifest")
    data["sampling"]["default_steps"] = chosen.steps
    if chosen.scheduler:
        data["sampling"]["default_scheduler"] = chosen.scheduler
    if chosen.decoder:  # Stable Diffusion: the tiny decoder, chosen for its speed at a measured cost
        data["sampling"]["default_decoder"] = chosen.decoder
    write_manifest(bundle / MANIFEST, read_manifest(data, str(bundle / MANIFEST)))


def stage_bundle(source_bundle: str, tmp: Path, chosen: Candidate) -> None:
    shutil.copytree(source_bundle, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("plans", "optimize"))
    set_defaults(tmp, chosen)
