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
    assert sorted(p.name for p in student.glob("samples_*steps.png")) == ["samples_1steps.png", "samples_2steps.png"]
    bundle = export_run(str(student), str(tmp_path / "b"), progress=lambda *_: None)
    manifest = json.loads((bundle / "gen.json").read_text())
    assert manifest["sampling"]["student"]["steps"] == 2 and manifest["sampling"]["default_steps"] == 2
    s = Sampler(str(bundle))
    images = s.generate(n=4)
    assert images.shape == (4, 1, 8, 8) and s.backend.component_calls == {"denoiser": 2}  # 2 steps, no arguments
    assert np.abs(Sampler(str(bundle), backend="eager").generate(n=4) - images).max() <= 1e-4
    s.generate(n=1, steps=8)
    with pytest.raises(GenError, match=r"steps = 9 is past this student's range of 1..8: it was distilled to sample in [24] steps"):
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
    with pytest.raises(GenError, match="a progressive student's halvings are all done: distil a new one"):
        distill(str(teacher), str(part), {}, resume=True, progress=False)  # finished: the hint is not --steps


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
    student = distill(str(teacher), str(tmp_path / "cs"), {**STUDENT, "start_steps": 6, "halvings": 1, "guidance": 2.0},
                      progress=False).path
    config = json.loads((student / "config.json").read_text())
    assert config["guidance"] == 1.0 and config["distill"]["teacher_guidance"] == 2.0  # folded in
    grids = sorted(p.name for p in student.glob("samples_*steps.png"))
    assert grids == ["samples_1steps.png", "samples_2steps.png", "samples_3steps.png"]  # the student's own 3, not 4
    (student / "notes.txt").write_text("mine")
    distill(str(teacher), str(student), {**STUDENT, "halvings": 1, "guidance": 2.0}, force=True, progress=False)
    grids = sorted(p.name for p in student.glob("samples_*steps.png"))  # --force: the old 3-step grid goes, notes stay
    assert grids == ["samples_1steps.png", "samples_2steps.png", "samples_4steps.png"]
    assert (student / "notes.txt").read_text() == "mine"
    bundle = export_run(str(student), str(tmp_path / "cb"), progress=lambda *_: None)
    s = Sampler(str(bundle))
    a, b = s.generate(n=2, labels=3), s.generate(n=2, labels=7)
    assert not np.array_equal(a, b) and s.backend.component_calls["denoiser"] == 8  # 4 steps each


CONSISTENCY = {"steps": 4, "batch_size": 8}


def test_consistency_student_is_a_4_step_lcm_bundle(teacher, tmp_path):
    student = distill(str(teacher), str(tmp_path / "cd"), CONSISTENCY, method="consistency", progress=False).path
    config = json.loads((student / "config.json").read_text())
    assert config["prediction"] == "v" and config["sample_steps"] == 4 and config["distill"]["skip"] == 20
    assert {f"samples_{k}steps.png" for k in (1, 2, 4)} <= {p.name for p in student.iterdir()}
    bundle = export_run(str(student), str(tmp_path / "b"), progress=lambda *_: None)
    sampling = json.loads((bundle / "gen.json").read_text())["sampling"]
    assert sampling["default_scheduler"] == "lcm" and sampling["default_steps"] == 4
    assert sampling["scheduler_config"]["original_inference_steps"] == 50 and sampling["student"]["max_steps"] == 8
    s = Sampler(str(bundle))
    images = s.generate(n=3, seed=5)
    assert s.backend.component_calls == {"denoiser": 4}  # consistency multistep at 4, no arguments
    assert np.abs(Sampler(str(bundle), backend="eager").generate(n=3, seed=5) - images).max() <= 1e-4
    one = s.generate(n=3, seed=5, steps=1)
    assert one.shape == images.shape and not np.array_equal(one, images)
    with pytest.raises(GenError, match=r"steps = 9 is past this student's range of 1..8: it was distilled to sample in [24] steps"):
        s.generate(n=1, steps=9)


def test_consistency_scalings_and_sampler_match_diffusers_lcm(teacher, tmp_path):
    """The student's boundary scalings are the LCM scheduler's; its torch sample grid (diffusers'
    LCMScheduler) and the shipped numpy LCM scheduler give the same 1-step image from the same noise."""
    import torch
    from diffusers import LCMScheduler

    from gen.trainkit.train import load_run

    student = distill(str(teacher), str(tmp_path / "cd"), CONSISTENCY, method="consistency", progress=False).path
    _, config, trainer = load_run(str(student))
    lcm = LCMScheduler(num_train_timesteps=1000, timestep_scaling=10.0)
    t = torch.tensor([-1, 0, 19, 499, 999])
    c_skip, c_out = trainer.boundary(t)
    for i, ti in enumerate(t.clamp(min=0).tolist()):
        want = lcm.get_scalings_for_boundary_condition_discrete(torch.tensor(float(ti)))
        assert abs(c_skip[i].item() - float(want[0])) < 1e-6 and abs(c_out[i].item() - float(want[1])) < 1e-6
    bundle = export_run(str(student), str(tmp_path / "b"), progress=lambda *_: None)
    noise = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    ours = Sampler(str(bundle), backend="eager")
    with torch.no_grad():  # one step from t = 999 is f(z, 999), clipped: no fresh noise enters
        z = torch.from_numpy(noise)
        want = trainer.consistency(trainer.ema.eval(), z, torch.full((2,), 999), None).clamp(-1, 1).numpy()
    from gen.runtime.schedulers import make_scheduler

    sched = make_scheduler("lcm", json.loads((bundle / "gen.json").read_text())["sampling"]["scheduler_config"])
    sched.set_timesteps(1)
    out = ours.backend.run("denoiser", {"sample": noise, "timestep": np.full(2, 999, dtype=np.int64)})
    got = sched.step(out, 999, noise).prev_sample
    assert int(sched.timesteps[0]) == 999 and np.abs(got - want).max() <= 1e-5


def test_heun_solver_is_closer_to_the_exact_teacher_path_than_ddim(teacher):
    """For Gaussian data N(0, 0.5^2) the ideal epsilon-predictor is known in closed form; with it as
    the teacher, one solver step 199 -> 179 is compared with the exact ODE solution.
    (Over long spans at high noise, where the ODE is nearly linear in sigma, Euler can win instead.)"""
    import types

    import torch

    from gen.trainkit.distill import student_config
    from gen.trainkit.distill.consistency import ConsistencyStudent

    class IdealTeacher(torch.nn.Module):
        def __init__(self, alpha_bar):
            super().__init__()
            self.alpha_bar = alpha_bar

        def forward(self, z, t, class_labels=None):
            ab = self.alpha_bar[t].view(-1, 1, 1, 1).float()
            s, var = (1 - ab).sqrt(), 0.25
            return types.SimpleNamespace(sample=s * z / (ab * var + 1 - ab))  # E[eps | z_t]

    errors = {}
    for solver in ("ddim", "heun"):
        config, _ = student_config("consistency", str(teacher), {"solver": solver})
        trainer = ConsistencyStudent(config)
        trainer.teacher = IdealTeacher(trainer.alpha_bar)
        trainer.d["teacher_prediction"] = "epsilon"  # what IdealTeacher predicts, whatever the run's
        z = 0.5 * torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))  # x0 inside the clip
        t, t_next = torch.full((16,), 199), torch.full((16,), 179)
        with torch.no_grad():
            step = trainer.solve(z, t, t_next, None)
        (a, s), (a_n, s_n) = trainer.scalings(t[:1]), trainer.scalings(t_next[:1])
        sigma, sigma_n = s / a, s_n / a_n  # in y = z / alpha the exact path is y ~ sqrt(var + sigma^2)
        exact = a_n * z / a * ((0.25 + sigma_n**2) / (0.25 + sigma**2)).sqrt()
        errors[solver] = (step - exact).abs().mean().item()
    assert errors["heun"] < 0.5 * errors["ddim"], errors  # 0.35 on the cosine schedule, 0.08 on linear


def test_consistency_resumes_bit_identically(teacher, tmp_path, monkeypatch):
    from gen.fileio import load_safetensors
    from gen.trainkit.rundir import RunDir

    options = {**CONSISTENCY, "steps": 6, "checkpoint_every": 3, "solver": "heun"}
    whole = distill(str(teacher), str(tmp_path / "whole"), options, method="consistency", progress=False).path
    with monkeypatch.context() as m:
        m.setattr(RunDir, "save_weights", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            distill(str(teacher), str(tmp_path / "part"), options, method="consistency", progress=False)
    distill(str(teacher), str(tmp_path / "part"), {}, method="consistency", resume=True, progress=False)
    a, _ = load_safetensors(whole / "weights.safetensors")
    b, _ = load_safetensors(tmp_path / "part" / "weights.safetensors")
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    state, _ = RunDir(tmp_path / "part").load_state()
    assert any(k.startswith("module.target.") for k in state)  # the target network is checkpointed too


@pytest.mark.parametrize("options, message", [
    ({"skip": 7}, "--skip 7 does not divide the teacher's 1000 training timesteps"),
    ({"solver": "euler"}, "unknown --solver 'euler'; choose one of ddim, heun"),
    ({"loss": "l1"}, "unknown --loss 'l1'; choose one of huber, l2"),
    ({"student_steps": 9}, "--student-steps 9 is outside the student's range 1..8"),
    ({"target_ema": 1.0}, r"--target-ema must be in \[0, 1\)"),
    ({"halvings": 2}, "unknown options for distill consistency: halvings"),
])
def test_bad_consistency_settings_are_refused(teacher, tmp_path, options, message):
    with pytest.raises(GenError, match=message):
        distill(str(teacher), str(tmp_path / "s"), {**CONSISTENCY, **options}, method="consistency", progress=False)
    assert not (tmp_path / "s").exists()


def test_the_cli_names_the_grids_it_wrote(teacher, tmp_path):
    from tests.cli.test_cli import gen_here

    p = gen_here("distill", "progressive", teacher, "--out", tmp_path / "s", "--start-steps", "8", "--halvings", "2",
                 "--steps-per-halving", "3", "--batch-size", "8", "--quiet")
    assert "samples at 1/2 steps" in p.stdout and f"gen export {tmp_path / 's'}" in p.stdout
    for steps, message in (("9", "--steps 9 is past this student's range of 1..8: it was distilled to sample in 2 steps"),
                           ("0", "--steps must be from 1 to 10000, got 0")):  # gen eval words the sampler's errors as flags
        p = gen_here("eval", tmp_path / "s", "--steps", steps, check=False)
        assert p.returncode == 2 and message in p.stderr, p.stderr


def test_a_student_teaches_only_what_it_was_trained_for(teacher, tmp_path):
    two = distill(str(teacher), str(tmp_path / "two"), STUDENT, progress=False).path  # a 2-step student
    with pytest.raises(GenError, match=rf"--start-steps 8: .* is a 2-step progressive student, trained for 2-step "
                                       rf"sampling only; continue its halving with --start-steps 2, or distil from its "
                                       rf"teacher {teacher}"):
        distill(str(two), str(tmp_path / "a"), STUDENT, progress=False)
    with pytest.raises(GenError, match=f"is a 2-step progressive student, not a teacher for consistency distillation.* "
                                       f"distil from its teacher {teacher}"):
        distill(str(two), str(tmp_path / "b"), CONSISTENCY, method="consistency", progress=False)
    one = distill(str(two), str(tmp_path / "one"), {**STUDENT, "start_steps": 2, "halvings": 1}, progress=False).path
    config = json.loads((one / "config.json").read_text())
    assert config["sample_steps"] == 1 and config["distill"]["teacher"] == str(two.resolve())
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_resume_takes_a_new_total_and_refuses_another_method(teacher, tmp_path):
    options = {**CONSISTENCY, "steps": 4}
    student = distill(str(teacher), str(tmp_path / "cd"), options, method="consistency", progress=False).path
    with pytest.raises(GenError, match=r"has already trained 4 steps \(it asks for 4\)"):
        distill(str(teacher), str(student), {"steps": None}, method="consistency", resume=True, progress=False)
    distill(str(teacher), str(student), {"steps": 6}, method="consistency", resume=True, progress=False)
    assert json.loads((student / "config.json").read_text())["steps"] == 6
    assert json.loads((student / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 6
    with pytest.raises(GenError, match=r"--resume: .*cd is a consistency student; resume it with gen distill consistency"):
        distill(str(teacher), str(student), {}, method="progressive", resume=True, progress=False)
    with pytest.raises(GenError, match=r"--resume: .*teacher is not a distilled student"):
        distill(str(teacher), str(teacher), {}, method="consistency", resume=True, progress=False)


@pytest.mark.parametrize("where", ["teacher", "teacher/student"])
def test_force_never_writes_over_or_into_the_teacher(teacher, tmp_path, where):
    before = (teacher / "weights.safetensors").read_bytes()
    out = teacher.parent / where.replace("teacher", teacher.name)
    with pytest.raises(GenError, match=r"is, contains or lies inside the input .*teacher; writing there would destroy it"):
        distill(str(teacher), str(out), {**CONSISTENCY, "steps": 2}, method="consistency", force=True, progress=False)
    assert (teacher / "weights.safetensors").read_bytes() == before and not (teacher / "student").exists()
