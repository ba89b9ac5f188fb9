"""Progressive distillation with tiny settings: a student run that exports as a few-step bundle,
resumes bit-identically, and refuses bad teachers and settings (quality: benchmarks/, RESULTS.md)."""

import json

import numpy as np
import pytest

from gen.errors import GenError
from gen.export.onnx_export import export_run
from gen.runtime.sampler import Sampler
from gen.trainkit.distill import distill
from gen.trainkit.train import train

TINY = {"widths": [16, 32], "batch_size": 16, "steps": 20, "log_every": 5, "sample_every": 1000, "checkpoint_every": 1000}
STUDENT = {"start_steps": 8, "halvings": 2, "steps_per_halving": 3, "batch_size": 8}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return train("ddpm", "digits", str(tmp_path_factory.mktemp("t") / "teacher"), TINY, progress=False).path


def test_student_is_a_few_step_bundle(teacher, tmp_path):
    student = distill(str(teacher), str(tmp_path / "s"), STUDENT, progress=False).path
    config = json.loads((student / "config.json").read_text())
    assert config["prediction"] == "v" and config["sample_steps"] == 2 and config["steps"] == 6
    bundle = export_run(str(student), str(tmp_path / "b"), progress=lambda *_: None)
    manifest = json.loads((bundle / "gen.json").read_text())
    assert manifest["sampling"]["student"]["steps"] == 2 and manifest["sampling"]["default_steps"] == 2
    s = Sampler(str(bundle))
    images = s.generate(n=4)
    assert images.shape == (4, 1, 8, 8) and s.backend.component_calls == {"denoiser": 2}  # 2 steps, no arguments
    assert np.abs(Sampler(str(bundle), backend="eager").generate(n=4) - images).max() <= 1e-4
    s.generate(n=1, steps=8)
    with pytest.raises(GenError, match="steps = 9 is over this model's limit of 8"):
        s.generate(n=1, steps=9)
    from gen.runtime.bench import run_bench

    result = run_bench(str(bundle), ["ort"], ["fp32"], [2, 50], [1], repeats=1, log=lambda *_: None)
    assert [r["steps"] for r in result["rows"]] == [2] and result["skipped"][0]["steps"] == 50


def test_student_resumes_bit_identically(teacher, tmp_path, monkeypatch):
    """Across the halving boundary (step 3): the checkpoint at step 4 holds the new teacher too."""
    from gen.fileio import load_safetensors
    from gen.trainkit.rundir import RunDir

    whole = distill(str(teacher), str(tmp_path / "whole"), {**STUDENT, "checkpoint_every": 4}, progress=False).path
    part = tmp_path / "part"

    def crash(*_):
        raise KeyboardInterrupt  # killed after the step-4 checkpoint, before the end

    with monkeypatch.context() as m:
        m.setattr(RunDir, "save_weights", crash)
        with pytest.raises(KeyboardInterrupt):
            distill(str(teacher), str(part), {**STUDENT, "checkpoint_every": 4}, progress=False)
    _, meta = RunDir(part).load_state()
    assert int(meta["step"]) == 4
    distill(str(teacher), str(part), {}, resume=True, progress=False)
    a, _ = load_safetensors(whole / "weights.safetensors")
    b, _ = load_safetensors(part / "weights.safetensors")
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_bad_teachers_and_settings_are_refused(teacher, tmp_path):
    gan = train("gan", "digits", str(tmp_path / "gan"), {"width": 8, "batch_size": 8, "steps": 1}, progress=False).path
    with pytest.raises(GenError, match="is a gan run; distillation needs a diffusion run"):
        distill(str(gan), str(tmp_path / "s1"), STUDENT, progress=False)
    with pytest.raises(GenError, match="run directory not found"):
        distill(str(tmp_path / "nothing"), str(tmp_path / "s2"), STUDENT, progress=False)
    with pytest.raises(GenError, match="cannot be halved 2 times into whole steps"):
        distill(str(teacher), str(tmp_path / "s3"), {**STUDENT, "start_steps": 6}, progress=False)
    with pytest.raises(GenError, match="--halvings must be a positive integer"):
        distill(str(teacher), str(tmp_path / "s4"), {**STUDENT, "halvings": 0}, progress=False)
    with pytest.raises(GenError, match="--guidance applies to a class-conditional teacher"):
        distill(str(teacher), str(tmp_path / "s7"), {**STUDENT, "guidance": 3.0}, progress=False)
    with pytest.raises(GenError, match="--lr must be a positive finite number"):
        distill(str(teacher), str(tmp_path / "s5"), {**STUDENT, "lr": float("nan")}, progress=False)
    pickled = tmp_path / "pickled"
    import shutil

    shutil.copytree(teacher, pickled)
    (pickled / "weights.safetensors").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(GenError, match="pickled"):
        distill(str(pickled), str(tmp_path / "s6"), STUDENT, progress=False)
    assert not any((tmp_path / f"s{i}").exists() for i in range(1, 7))


def test_a_conditional_teacher_gives_a_conditional_one_pass_student(tmp_path):
    teacher = train("ddpm", "digits", str(tmp_path / "ct"), {**TINY, "steps": 10, "conditional": True},
                    progress=False).path
    student = distill(str(teacher), str(tmp_path / "cs"), {**STUDENT, "halvings": 1, "guidance": 2.0}, progress=False).path
    config = json.loads((student / "config.json").read_text())
    assert config["guidance"] == 1.0 and config["distill"]["teacher_guidance"] == 2.0  # folded in
    bundle = export_run(str(student), str(tmp_path / "cb"), progress=lambda *_: None)
    s = Sampler(str(bundle))
    a, b = s.generate(n=2, labels=3), s.generate(n=2, labels=7)
    assert not np.array_equal(a, b) and s.backend.component_calls["denoiser"] == 8  # 4 steps each
