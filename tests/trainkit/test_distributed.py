"""Data-parallel training with 2 CPU processes (torchrun, gloo) against one process on the same
global batch: the autoencoder's step draws no noise, so the two runs must agree up to summation order."""

import os
import shutil
import subprocess
import sys

import pytest

from gen.fileio import load_safetensors
from tests.cli.test_cli import gen

ARGS = ["train", "ae", "--steps", "8", "--batch-size", "16", "--checkpoint-every", "4", "--sample-every", "100", "--quiet"]
TORCHRUN = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")


def torchrun(*args, processes=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([TORCHRUN, "--standalone", f"--nproc_per_node={processes}", "-m", "gen", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun (PyTorch's launcher) is not installed")
def test_two_processes_train_what_one_does_on_the_same_global_batch(tmp_path):
    gen(*ARGS, "--out", tmp_path / "one")
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


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun (PyTorch's launcher) is not installed")
def test_a_global_batch_that_does_not_divide_is_refused(tmp_path):
    r = torchrun("train", "ae", "--steps", "2", "--batch-size", "7", "--quiet", "--out", tmp_path / "odd")
    assert r.returncode != 0 and "must divide among the 2 processes" in r.stderr
    assert not (tmp_path / "odd").exists()


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun (PyTorch's launcher) is not installed")
def test_a_gan_with_several_critic_batches_per_step_trains_under_two_processes(tmp_path):
    # wgan-gp draws n_critic global batches per step and clips nothing; a seed > 0 once overflowed a reseed
    r = torchrun("train", "gan", "--loss", "wgan-gp", "--n-critic", "6", "--seed", "3", "--steps", "3", "--batch-size", "8",
                 "--sample-every", "100", "--quiet", "--out", tmp_path / "gan")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "gan" / "weights.safetensors").is_file()
    r = torchrun("train", "textual-inversion", "--token", "<t>", "--steps", "1", "--quiet", "--out", tmp_path / "ti")
    assert r.returncode != 0 and "does not run data-parallel" in r.stderr and not (tmp_path / "ti").exists()
