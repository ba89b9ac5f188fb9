"""`gen optimize tiny-sd` end to end, short budgets: a real LCM-LoRA student (a few distillation steps), real
exports, diffusers' own pipeline as reference and race contender, real races and gen tune; the bundle it
writes, the report, and the refusals of what a Stable Diffusion source does not take."""

import json

import numpy as np
import pytest

from gen.errors import GenError
from gen.optimize.gate import parse_gates
from gen.optimize.run import optimize
from gen.optimize.sd_search import sd_candidates
from gen.runtime.sampler import Sampler
from gen.trainkit.sd.lcm_lora import distill_lcm_lora

FAST = {"n": 2, "max_seconds": 3.0, "tune_seconds": 2.0}


@pytest.fixture(autouse=True)
def _short_blocks(monkeypatch):
    import gen.runtime.speed as speed

    monkeypatch.setattr(speed, "BLOCK_SECONDS", 0.02)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("lcm") / "lcm"
    distill_lcm_lora(None, "digits", str(out), {"steps": 4, "batch_size": 2, "max_images": 8}, progress=False)
    return str(out)


def test_candidates_of_a_stable_diffusion_source():
    names = [c.name for c in sd_candidates({"lcm": "lcm-lora"}, tiny=True)]
    assert names[:4] == ["teacher dpm++ 25 steps", "teacher dpm++ 8 steps", "teacher dpm++ 5 steps", "teacher dpm++ 4 steps"]
    assert "lcm 1 steps" in names and "lcm 1 steps, tiny decoder" in names and "teacher dpm++ 4 steps, tiny decoder" in names
    assert "teacher dpm++ 8 steps, tiny decoder" not in names  # the tiny decoder only where the steps are few


def test_optimize_tiny_sd_against_diffusers(student, tmp_path, quick_metric_classifier):
    out, work = tmp_path / "fast", tmp_path / "work"
    record = optimize("tiny-sd", str(out), ["psnr:-100"], {"lcm": student}, None, str(work), log=lambda m: None, **FAST)
    names = list(record["candidates"])
    assert names == ["teacher dpm++ 25 steps", "teacher dpm++ 8 steps", "teacher dpm++ 5 steps", "teacher dpm++ 4 steps",
                     "lcm 4 steps", "lcm 2 steps", "lcm 1 steps"]
    q = {n: record["quality"][n]["metrics"] for n in names}
    # gen's teacher at 25 DPM-Solver++ steps reproduces diffusers' images from the same noise; fewer steps stray
    assert q["teacher dpm++ 25 steps"]["psnr_db"] > 60 and q["teacher dpm++ 25 steps"]["feature_distance"] < 1e-4
    assert q["teacher dpm++ 4 steps"]["psnr_db"] < q["teacher dpm++ 5 steps"]["psnr_db"] < q["teacher dpm++ 8 steps"]["psnr_db"] < 60
    assert q["teacher dpm++ 4 steps"]["feature_distance"] > 0
    # the relative gate is measured from the teacher's own 4-step images
    assert record["verdicts"]["lcm 1 steps"]["gates"]["psnr:-100"]["limit"] == pytest.approx(q["teacher dpm++ 4 steps"]["psnr_db"] - 100, abs=1e-3)
    peer = record["peer"]["diffusers dpm++ 25 steps (eager)"]
    assert peer["ms_per_call"] > 0
    for s in record["latency"].values():  # one race: each speed-up over diffusers is its ratio over diffusers'
        assert s["speedup_over_peer"] == pytest.approx(s["speedup"] / peer["speedup"], rel=1e-2)
    chosen = record["choice"]
    assert record["latency"][chosen]["speedup_over_peer"] > 1
    manifest = json.loads((out / "gen.json").read_text())
    assert manifest["sampling"]["default_steps"] == record["candidates"][chosen]["steps"]
    assert list((out / "plans").glob("*.json")), "the host's plan is inside the bundle"
    report = json.loads((out / "optimize" / "optimize.json").read_text())
    assert report["final"]["passes"] and report["final"]["reference_ms"] > 0 and report["final"]["quality"]["metrics"]["psnr_db"] > 0
    assert (out / "optimize" / "optimize.png").stat().st_size > 10_000
    assert np.load(work / "reference.npy", allow_pickle=False).shape == (2, 3, 64, 64)
    with Sampler(str(out)) as s:  # the chosen sampling by default, with this host's plan
        assert s.plan_note and s.generate("a red house", n=1).shape == (1, 3, 64, 64)
    # --resume with a gate nothing meets: refused from the figures already measured, nothing scored again
    lines = []
    with pytest.raises(GenError, match=r"no candidate meets every gate, so nothing was written; psnr:200: closest "):
        optimize("tiny-sd", str(tmp_path / "o2"), ["psnr:200"], {"lcm": student}, None, str(work), resume=True,
                 log=lines.append, **FAST)
    assert not (tmp_path / "o2").exists() and not any(line.startswith(("[quality", "[reference", "[latency")) for line in lines)


def test_what_a_stable_diffusion_source_does_not_take_is_refused_before_any_work(student, tmp_path):
    o = str(tmp_path / "o")
    with pytest.raises(GenError, match="judged by image PSNR against the reference"):
        optimize("tiny-sd", o, ["fd:1.5x"], log=lambda m: None)
    with pytest.raises(GenError, match="judges Stable Diffusion sources"):
        parse_gates(["psnr:+0"], conditional=False)  # a digits teacher's gates
    with pytest.raises(GenError, match="'progressive' is not a method for a Stable Diffusion source"):
        optimize("tiny-sd", o, [], distill=("progressive",), log=lambda m: None)
    with pytest.raises(GenError, match="--int8 with a Stable Diffusion source"):
        optimize("tiny-sd", o, [], int8=True, log=lambda m: None)
    with pytest.raises(GenError, match="psnr takes dB"):
        optimize("tiny-sd", o, ["psnr:1.5x"], log=lambda m: None)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o-work").exists()
