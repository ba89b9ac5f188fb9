"""Data-parallel training with 2 CPU processes (torchrun, gloo) against one process on the same
global batch: the autoencoder's step draws no noise, so the two runs must agree up to summation order."""

import os
import shutil
import subprocess
import sys

import pytest

from gen.errors import GenError
from gen.fileio import load_safetensors
from gen.trainkit.train import train

ARGS = ["train", "ae", "--steps", "8", "--batch-size", "16", "--checkpoint-every", "4", "--sample-every", "100", "--quiet"]
SAME = {"steps": 8, "batch_size": 16, "checkpoint_every": 4, "sample_every": 100}  # ARGS, in process
TORCHRUN = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
ACCELERATE = shutil.which("accelerate") or os.path.join(os.path.dirname(sys.executable), "accelerate")


def torchrun(*args, processes=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([TORCHRUN, "--standalone", f"--nproc_per_node={processes}", "-m", "gen", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun (PyTorch's launcher) is not installed")
def test_two_processes_train_what_one_does_on_the_same_global_batch(tmp_path):
    train("ae", "digits", str(tmp_path / "one"), SAME, progress=False)
    r = torchrun(*ARGS, "--out", tmp_path / "two")
    assert r.returncode == 0, r.stderr[-3000:]
    one, _ = load_safetensors(tmp_path / "one" / "weights.safetensors")
    two, _ = load_safetensors(tmp_path / "two" / "weights.safetensors")
    assert one.keys() == two.keys()
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst <= 1e-5, worst
    # rank 0 alone wrote: one metrics file with one record per logged step, logs averaged over ranks
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((tmp_path / "one" / "metrics.jsonl").read_text().splitlines())
    assert (tmp_path / "two" / "samples.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no staging left behind
    assert r.stdout.count("run written to") == 1 and "trained by 2 processes" in r.stdout, r.stdout


def test_a_global_batch_that_does_not_divide_is_refused():
    from gen.trainkit.distributed import World, check_batch

    check_batch(16, World(1, 2))
    with pytest.raises(GenError, match="--batch-size 7 is the global batch and must divide among the 2 processes"):
        check_batch(7, World(0, 2))  # checked before the run directory is claimed (gen/trainkit/train.py)


@pytest.mark.slow  # 12 s of two launched processes; the torchrun test above covers the multi-process path in the suite
@pytest.mark.skipif(not os.path.exists(ACCELERATE), reason="accelerate (installed with peft) is not installed")
def test_a_gan_with_several_critic_batches_per_step_trains_under_accelerate_launch(tmp_path):
    """accelerate's launcher (its multi-GPU mode is torchrun's, with gloo on a CPU host) runs gen's
    trainers as torchrun does. wgan-gp draws n_critic global batches per step and clips nothing; a
    seed > 0 once overflowed a reseed."""
    r = subprocess.run([ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "gen",
                        "train", "gan", "--loss", "wgan-gp", "--n-critic", "6", "--seed", "3", "--steps", "3",
                        "--batch-size", "8", "--sample-every", "100", "--quiet", "--out", str(tmp_path / "gan")],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "gan" / "weights.safetensors").is_file()
    # both ranks ran the command; rank 0 alone wrote the run and says so, once
    assert r.stdout.count("run written to") == 1 and "trained by 2 processes" in r.stdout, r.stdout


def test_the_sd_trainers_refuse_a_launcher(tmp_path, monkeypatch):
    from gen.trainkit.sd.textual_inversion import train_textual_inversion

    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets; the trainer refuses before joining any group
    with pytest.raises(GenError, match="does not run data-parallel"):
        train_textual_inversion(None, "cat", str(tmp_path / "ti"), "<t>", None, {"steps": 1}, progress=False)
    assert not (tmp_path / "ti").exists()
