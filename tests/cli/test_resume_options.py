"""--resume keeps the run's own options: one typed with a different value is refused by name, not ignored."""

import json

import pytest

from gen.trainkit.train import train
from tests.cli.test_cli import gen_here


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "gan"
    train("gan", "digits", str(out), {"width": 8, "batch_size": 8, "steps": 2, "lr": 2e-4, "checkpoint_every": 1,
                                      "sample_every": 1000, "log_every": 50}, progress=False)
    return out


@pytest.mark.parametrize("args,message", [
    (["--lr", "0.01"], "would ignore --lr 0.01 (the run's: 0.0002)"),
    (["--batch-size", "64"], "would ignore --batch-size 64 (the run's: 8)"),
    (["--loss", "hinge", "--seed", "3"], "would ignore --loss hinge (the run's: bce); --seed 3 (the run's: 0)"),
])
def test_train_resume_refuses_changed_options(gan_run, args, message):
    before = (gan_run / "state.safetensors").read_bytes()
    p = gen_here("train", "gan", "--out", gan_run, "--resume", "--steps", "3", *args, "--quiet", check=False)
    assert p.returncode == 2 and message in p.stderr and "Drop them to continue the run" in p.stderr, p.stderr
    assert (gan_run / "state.safetensors").read_bytes() == before  # nothing trained


def test_the_same_values_are_no_change(gan_run):
    p = gen_here("train", "gan", "--out", gan_run, "--resume", "--steps", "2", "--lr", "0.0002", "--batch-size", "8",
                 "--quiet", check=False)
    assert "would ignore" not in p.stderr, p.stderr


def test_distill_resume_refuses_another_teacher_and_changed_options(tmp_path):
    # a student's recorded config (what gen distill consistency writes); the refusal comes before it is read further
    student, teacher = tmp_path / "student", tmp_path / "teacher"
    student.mkdir(), teacher.mkdir()
    (student / "config.json").write_text(json.dumps({
        "family": "ddpm", "lr": 2e-4, "batch_size": 64, "seed": 0,
        "distill": {"method": "consistency", "teacher": str(teacher.resolve()), "solver": "ddim", "skip": 20,
                    "loss": "huber", "target_ema": 0.95, "steps": 4}}))
    p = gen_here("distill", "consistency", tmp_path / "other", "--out", student, "--resume", "--solver", "heun",
                 "--skip", "10", "--loss", "l2", "--lr", "0.001", "--batch-size", "8", check=False)
    assert p.returncode == 2, p.stderr
    for part in (f"teacher {tmp_path / 'other'} (the run's: {teacher.resolve()})", "--solver heun (the run's: ddim)",
                 "--skip 10 (the run's: 20)", "--loss l2 (the run's: huber)", "--lr 0.001 (the run's: 0.0002)",
                 "--batch-size 8 (the run's: 64)"):
        assert part in p.stderr, (part, p.stderr)


def test_help_says_what_a_resume_keeps():
    p = gen_here("distill", "consistency", "--help", check=False)
    assert "only --steps, the new total, may change" in " ".join(p.stdout.split()).replace("│ ", "").replace(" │", "")
