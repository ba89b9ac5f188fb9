"""`gen optimize`'s entry: refusals first (source, gates, methods, --out, --work), then the search for the
source's kind (gen.optimize.search for a digits teacher, gen.optimize.sd_search for Stable Diffusion),
resumable from its work directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from gen.errors import GenError
from gen.optimize.candidates import DISTILL, teacher_config
from gen.optimize.search import MEASUREMENTS, Search


def optimize(source: str, out: str, gates: list[str], students: dict[str, str] | None = None,
             distill: tuple[str, ...] | None = None, work: str | None = None, resume: bool = False, force: bool = False,
             log: Callable[[str], None] = print, command: str | None = None, **settings) -> dict:
    """The whole search (gen.optimize.search's docstring); returns its record (also WORK/measurements.json).
    SOURCE is a `gen train ddpm` run, or a Stable Diffusion base (tiny-sd, or a diffusers folder:
    gen.optimize.sd_search). `distill` None: each kind's default methods, none when students are given."""
    from gen.export.onnx_io import refuse_existing
    from gen.fileio import read_json
    from gen.nets.components import is_conditional
    from gen.optimize.choose import refusal, verdicts
    from gen.optimize.gate import parse_gates
    from gen.optimize.sd_search import SdSearch, is_sd_source
    from gen.outputs import absolute, output_lock

    sd = is_sd_source(source)
    if sd and settings.get("int8"):
        raise GenError("--int8 with a Stable Diffusion source: export the chosen bundle's int8 files afterwards with "
                       "`gen export --model sd[-lora] ... --int8 --force` and run `gen tune` on it", "int8")
    config = None if sd else teacher_config(source)  # refusals first: nothing slow has run yet
    parsed = parse_gates(gates, conditional=not sd and is_conditional(config), sd=sd)
    methods = _methods(distill, students or {}, sd)
    out_path, work_path = absolute(out), absolute(work or f"{out}-work")
    refuse_existing(out_path, force, sources=(source,))
    given = dict(students or {}) if sd else {name: _student_run(name, run, source) for name, run in (students or {}).items()}
    if sd:
        settings.setdefault("n", 8)
    elif settings.get("n", 1000) < 10:
        raise GenError(f"--n {settings['n']}: gen eval fits its statistics on at least 10 images; give --n 10 or more", "n")
    with output_lock(work_path, "--work"):
        work_path.mkdir(parents=True, exist_ok=True)
        measured = work_path / MEASUREMENTS
        if measured.is_file() and not resume and not force:
            raise GenError(f"--work {work_path} holds a search already: --resume to continue it, --force to start "
                           "again, or choose another --work", "work")
        if force:  # only what a search writes there: its students, candidate bundles and measurements
            for name in ("students", "bundles", "optimize"):
                shutil.rmtree(work_path / name, ignore_errors=True)
            measured.unlink(missing_ok=True)
            (work_path / "reference.npy").unlink(missing_ok=True)
        record = read_json(measured, "optimize measurements") if resume and measured.is_file() else {}
        _refuse_other_search(record, source, settings, work_path)
        search = (SdSearch if sd else Search)(source, out_path, work_path, parsed, given, methods, log=log, force=force,
                                              record=record, **settings)
        record.update(source=_source_id(source), gates=[g.text for g in parsed],
                      command=command, settings={k: getattr(search, k) for k in ("n", "batch", "seed", "int8", "max_seconds")})
        runs = search.models()
        bundles = search.bundles(runs)
        todo = search.candidates(runs)
        record["reference"] = todo[0].name
        record["candidates"] = {c.name: c.options() for c in todo}
        search.save()
        search.quality(bundles, todo)
        against = search.verdict_reference(todo)
        record["verdicts"] = verdicts(parsed, {c.name: record["quality"][c.name] for c in todo}, against)
        search.save()
        if not any(v["passes"] for v in record["verdicts"].values()):  # refused before minutes of timing
            raise GenError(refusal(record["verdicts"]))
        choice = search.latency_and_choice(bundles, todo)
        chosen = next(c for c in todo if c.name == choice)
        log(f"[choice] {choice}: {search.speedup_text(choice)}, "
            + ", ".join(f"{g} {v['figure']:g} (limit {v['limit']:g})" for g, v in record["verdicts"][choice]["gates"].items()))
        search.finish(runs, bundles, chosen)
    return record


def _methods(distill: tuple[str, ...] | None, students: dict, sd: bool) -> tuple[str, ...]:
    """The distillation methods to run: the source kind's default unless given (none when students are)."""
    from gen.optimize.sd_search import DECODER, DISTILL_SD, LCM

    known = (LCM, DECODER) if sd else DISTILL
    if distill is None:
        return () if students else (DISTILL_SD if sd else DISTILL)
    bad = [m for m in distill if m not in known]
    if bad:
        kind = "a Stable Diffusion source" if sd else "a digits teacher"
        raise GenError(f"--distill {bad[0]!r} is not a method for {kind}; choose from {', '.join(known)} or none", "distill")
    clash = set(distill) & set(students)
    if clash:
        raise GenError(f"--student folder name {sorted(clash)[0]!r} is also a method distilled here; rename it", "student")
    return tuple(distill)


def _student_run(name: str, run: str, teacher: str) -> str:
    """A --student run, refused unless it is a distilled student of this teacher."""
    from gen.fileio import read_json

    path = Path(run) / "config.json"
    config = read_json(path, "run config") if path.is_file() else {}
    record = config.get("distill")
    if not record:
        raise GenError(f"--student {run} is not a distilled student (no distill record in its config.json): make one "
                       f"with `gen distill progressive {teacher}`", "student")
    if Path(record.get("teacher", "")).resolve() != Path(teacher).resolve():
        raise GenError(f"--student {run} was distilled from {record.get('teacher')}, not from {teacher}", "student")
    return run


def _source_id(source: str) -> str:
    """How the record names its source: the built-in tiny-sd by name, a folder by its absolute path."""
    from gen.optimize.sd_search import TINY_SD
    from gen.outputs import absolute

    return source if source == TINY_SD else str(absolute(source))


def _refuse_other_search(record: dict, source: str, settings: dict, work: Path) -> None:
    """--resume continues the same search: the same teacher, scored on the same images."""
    if record and record.get("source") != _source_id(source):
        raise GenError(f"--resume: {work} is a search of {record.get('source')}, not of {source}", "resume")
    before = record.get("settings", {})
    changed = [k for k in ("n", "seed") if k in settings and k in before and settings[k] != before[k]]
    if changed:
        raise GenError(f"--resume: {work}'s figures were measured with " + ", ".join(f"--{k} {before[k]}" for k in changed)
                       + "; resume with the same, or start again with --force", "resume")
