"""`gen optimize` end to end on a tiny teacher and student (real training, export, gen eval, races and
gen tune, with short budgets): the bundle it writes, the report, --resume, and the refusals."""

import json

import pytest

from gen.errors import GenError
from gen.optimize.run import optimize
from gen.runtime.sampler import Sampler
from gen.trainkit.distill import distill
from gen.trainkit.train import train

TINY = {"widths": [16, 32], "batch_size": 16, "steps": 20, "log_every": 5, "sample_every": 1000, "checkpoint_every": 1000,
        "sample_steps": 8}
STUDENT = {"start_steps": 8, "halvings": 2, "steps_per_halving": 3, "batch_size": 8}
FAST = {"n": 10, "batch": 2, "max_seconds": 4.0, "tune_seconds": 2.0}


@pytest.fixture(autouse=True)
def _short_blocks(monkeypatch):
    """Every race here (candidates, head to head, gen tune, the final timing) in blocks of 0.02 s a side
    instead of 0.2 s: the tests check what the search does with its figures, not how exact they are; the
    real settings are what `gen optimize` runs (docs/RESULTS.md)."""
    import gen.runtime.speed as speed

    monkeypatch.setattr(speed, "BLOCK_SECONDS", 0.02)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("optimize")
    teacher = train("ddpm", "digits", str(root / "teacher"), TINY, progress=False).path
    student = distill(str(teacher), str(root / "p2"), STUDENT, progress=False).path
    return str(teacher), str(student), root


def test_optimize_writes_the_chosen_bundle_with_its_defaults_plan_and_report(runs, tmp_path):
    teacher, student, _ = runs
    out, work = tmp_path / "fast", tmp_path / "work"
    record = optimize(teacher, str(out), ["fd:1000x"], {"p2": student}, (), str(work), log=lambda m: None, **FAST)
    names = list(record["candidates"])
    assert names == ["teacher 8 steps", "teacher dpm++ 4 steps", "p2 1 steps", "p2 2 steps"]
    assert set(record["quality"]) == set(names) and set(record["latency"]) == set(names)
    assert record["latency"]["teacher 8 steps"]["baseline"] and record["verdicts"]["p2 1 steps"]["passes"]
    chosen = record["choice"]
    assert chosen != "teacher 8 steps" and record["latency"][chosen]["speedup"] > 1.5  # 8 steps against at most 4
    manifest = json.loads((out / "gen.json").read_text())
    assert manifest["sampling"]["default_steps"] == record["candidates"][chosen]["steps"]
    if "scheduler" in record["candidates"][chosen]:
        assert manifest["sampling"]["default_scheduler"] == record["candidates"][chosen]["scheduler"]
    assert list((out / "plans").glob("*.json")), "the host's plan is inside the bundle"
    report = json.loads((out / "optimize" / "optimize.json").read_text())
    assert report["choice"] == chosen and report["final"]["passes"] and report["final"]["speedup"] > 1
    assert (out / "optimize" / "optimize.png").stat().st_size > 10_000
    with Sampler(str(out)) as s:  # this host's plan, said so; the chosen steps by default
        assert s.plan_note and s.generate(n=1).shape == (1, 1, 8, 8)

    # a finished search is not started over by accident; --resume with a gate nothing meets: refused from the
    # figures already measured (nothing scored or timed again), nothing written
    with pytest.raises(GenError, match="holds a search already: --resume to continue it"):
        optimize(teacher, str(tmp_path / "o2"), ["fd:2x"], {"p2": student}, (), str(work), log=lambda m: None, **FAST)
    lines = []
    with pytest.raises(GenError, match=r"no candidate meets every gate, so nothing was written; fd:0.001: closest .* at "):
        optimize(teacher, str(tmp_path / "o2"), ["fd:0.001"], {"p2": student}, (), str(work), resume=True,
                 log=lines.append, **FAST)
    assert not (tmp_path / "o2").exists() and not any(line.startswith(("[quality", "[latency")) for line in lines)
    with pytest.raises(GenError, match="measured with --n 10; resume with the same"):
        optimize(teacher, str(tmp_path / "o2"), [], {"p2": student}, (), str(work), resume=True, log=lambda m: None,
                 **{**FAST, "n": 20})


def test_sources_that_cannot_be_optimized_are_refused_before_any_work(runs, tmp_path):
    teacher, student, root = runs
    with pytest.raises(GenError, match="is already a progressive student: pass its teacher as SOURCE"):
        optimize(student, str(tmp_path / "o"), [], log=lambda m: None)
    with pytest.raises(GenError, match="not a run directory"):
        optimize(str(tmp_path), str(tmp_path / "o"), [], log=lambda m: None)
    with pytest.raises(GenError, match="not a gate gen knows"):
        optimize(teacher, str(tmp_path / "o"), ["sharpness:3"], log=lambda m: None)
    other = train("ddpm", "digits", str(root / "other"), {**TINY, "steps": 2}, progress=False).path
    with pytest.raises(GenError, match="was distilled from .*, not from"):
        optimize(str(other), str(tmp_path / "o"), [], {"p2": student}, (), log=lambda m: None)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o-work").exists()
