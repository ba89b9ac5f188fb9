"""Short real training runs: every family trains, logs, checkpoints, resumes exactly, and refuses bad input."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from gen.errors import GenError
from gen.fileio import load_safetensors
from gen.trainkit.rundir import RunDir
from gen.trainkit.train import load_run, sample_run, train

FAST = {"log_every": 5, "sample_every": 10, "checkpoint_every": 10}
TINY = {
    "gan": {"width": 16, "batch_size": 16},
    "vae": {"width": 8, "batch_size": 16},
    "ddpm": {"widths": [16, 16], "batch_size": 16},
}


def _train(family, out, steps=12, **kw):
    resume, force = kw.pop("resume", False), kw.pop("force", False)
    return train(family, "digits", str(out), {**TINY[family], **FAST, "steps": steps, **kw}, resume=resume, force=force, progress=False)


@pytest.mark.parametrize("family,extra", [
    ("gan", {"loss": "bce"}), ("gan", {"loss": "lsgan"}), ("gan", {"loss": "wgan-gp", "n_critic": 2}),
    ("gan", {"loss": "hinge", "conditional": True}), ("vae", {"beta": 2.0}),
    ("ddpm", {"schedule": "cosine", "prediction": "v", "conditional": True}),
])
def test_every_family_trains_and_writes_a_complete_run(tmp_path, family, extra):
    run = _train(family, tmp_path / "run", **extra)
    config = json.loads(run.config_path.read_text())
    assert config["family"] == family and config["image_size"] == 8 and config["num_classes"] == 10
    records = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 12]
    assert all(np.isfinite(v) for r in records for k, v in r.items() if k != "step")
    assert (run.path / "samples.png").is_file() and (run.path / "samples" / "step_000010.png").is_file()
    _, meta = load_safetensors(run.weights_path)
    assert meta["family"] == family and json.loads(meta["config"])["steps"] == 12
    _, config, trainer = load_run(str(run.path))
    images = sample_run(trainer, config, 6, seed=0, labels=np.arange(6) if config["conditional"] else None, steps=3)
    assert images.shape == (6, 1, 8, 8) and images.std() > 0.01


@pytest.mark.parametrize("family", ["gan", "ddpm"])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path, family):
    straight = _train(family, tmp_path / "straight", steps=20)
    _train(family, tmp_path / "split", steps=10)
    resumed = _train(family, tmp_path / "split", steps=20, resume=True)
    a, _ = load_safetensors(straight.state_path)
    b, _ = load_safetensors(resumed.state_path)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(line)["step"] for line in resumed.metrics_path.read_text().splitlines()]
    assert steps == [5, 10, 15, 20]


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    a = load_safetensors(_train("vae", tmp_path / "a", steps=3).weights_path)[0]
    b = load_safetensors(_train("vae", tmp_path / "b", steps=3).weights_path)[0]
    c = load_safetensors(_train("vae", tmp_path / "c", steps=3, seed=1).weights_path)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_refuses_to_overwrite_a_run_unless_forced(tmp_path):
    run = _train("vae", tmp_path / "run", steps=2)
    before = run.weights_path.read_bytes()
    with pytest.raises(GenError, match="already holds another run; pass --resume .* --force"):
        _train("vae", tmp_path / "run", steps=2, seed=5)
    assert run.weights_path.read_bytes() == before
    with pytest.raises(GenError, match=r"already holds another run; pass --force to replace it"):  # SD trainers: no --resume
        RunDir(str(run.path)).check(resume=False, force=False, resumable=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(GenError, match="other files"):
        _train("vae", tmp_path / "other", steps=2)
    with pytest.raises(GenError, match="not a gen run; refusing to delete"):
        _train("vae", tmp_path / "other", steps=2, force=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    _train("vae", tmp_path / "run", steps=2, seed=5, force=True)
    assert run.weights_path.read_bytes() != before


def test_resume_of_another_family_or_of_nothing_is_refused(tmp_path):
    _train("vae", tmp_path / "run", steps=2)
    with pytest.raises(GenError, match="is a vae run, not gan"):
        _train("gan", tmp_path / "run", steps=4, resume=True)
    with pytest.raises(GenError, match="holds no run"):
        _train("gan", tmp_path / "nothing", steps=4, resume=True)
    files = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    for steps in (1, 2):  # before and at the step it reached: refused, the run left as it was
        with pytest.raises(GenError, match=rf"--resume: .* has already trained 2 steps \(it asks for {steps}\): nothing to do; "
                                           "give --steps above 2"):
            _train("vae", tmp_path / "run", steps=steps, resume=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == files


def test_corrupt_truncated_and_pickled_checkpoints_are_refused_clearly(tmp_path):
    run = _train("vae", tmp_path / "run", steps=2)
    good = run.weights_path.read_bytes()
    run.weights_path.write_bytes(good[: len(good) // 2])
    with pytest.raises(GenError, match="weights.safetensors is truncated"):
        load_run(str(run.path))
    run.weights_path.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    with pytest.raises(GenError, match="pickled .* never unpickles"):
        load_run(str(run.path))
    torch.save({"w": torch.zeros(2)}, run.state_path)
    with pytest.raises(GenError, match="state.safetensors is a pickled"):
        _train("vae", tmp_path / "run", steps=4, resume=True)
    run.weights_path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(GenError, match="header is not JSON"):
        load_run(str(run.path))


def test_bad_options_are_named(tmp_path):
    with pytest.raises(GenError, match="--steps must be a positive integer, got 0"):
        _train("vae", tmp_path / "a", steps=0)
    with pytest.raises(GenError, match="--conditional needs labelled data"):
        from PIL import Image

        (tmp_path / "imgs").mkdir()
        for i in range(4):
            Image.new("L", (8, 8), i * 50).save(tmp_path / "imgs" / f"{i}.png")
        train("gan", str(tmp_path / "imgs"), str(tmp_path / "b"), {"conditional": True, "steps": 1})
    assert not (tmp_path / "b" / "weights.safetensors").exists()
    with pytest.raises(GenError, match=r"--beta must be >= 0, got -1"):
        _train("vae", tmp_path / "c", beta=-1.0)
    with pytest.raises(GenError, match=r"--ema-decay must be in \[0, 1\), got 1.5"):
        _train("ddpm", tmp_path / "d", ema_decay=1.5)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_a_safetensors_header_length_starting_with_0x80_is_not_mistaken_for_a_pickle(tmp_path):
    # 384 = 0x180: the first byte of the little-endian length is 0x80, the pickle PROTO opcode
    import json as _json
    import struct

    from gen.fileio import check_safetensors

    body = _json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    header = body + b" " * (384 - len(body))
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", 384) + header + struct.pack("<f", 1.5))
    assert path.read_bytes()[0] == 0x80
    assert "x" in check_safetensors(path)
    tensors, _ = load_safetensors(path)
    assert tensors["x"].item() == 1.5


def test_force_keeps_the_old_run_when_the_new_arguments_are_bad(tmp_path):
    run = _train("vae", tmp_path / "run", steps=2)
    before = run.weights_path.read_bytes()
    with pytest.raises(GenError, match="--data folder not found"):
        train("vae", str(tmp_path / "typo"), str(run.path), {"steps": 2}, force=True, progress=False)
    with pytest.raises(GenError, match="--image-size must be a power of two >= 8"):
        train("vae", "digits", str(run.path), {"steps": 2}, image_size=10, force=True, progress=False)
    with pytest.raises(GenError, match="--batch-size must be at least 2"):
        train("gan", "digits", str(run.path), {"steps": 2, "batch_size": 1}, force=True, progress=False)
    with pytest.raises(GenError, match="--n-critic must be a positive integer, got 0"):
        train("gan", "digits", str(run.path), {"steps": 2, "n_critic": 0}, force=True, progress=False)
    assert run.weights_path.read_bytes() == before
    umask = os.umask(0)
    os.umask(umask)
    assert (run.weights_path.stat().st_mode & 0o777) == 0o666 & ~umask  # not mkstemp's 0600


def test_the_time_estimate_is_corrected_when_the_rate_changes(tmp_path, monkeypatch, capsys):
    """A one-time estimate went stale when another job took the cores: a new one is printed. The clock is
    the loop's own (steps here take no real time): 0.01 s a step, then 0.05 s from step 70 on."""
    import types

    import gen.trainkit.train as loop

    clock = {"t": 0.0, "calls": 0}

    def perf_counter():
        clock["calls"] += 1  # one call per step after the first
        clock["t"] += 0.01 if clock["calls"] < 70 else 0.05
        return clock["t"]

    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=perf_counter))
    monkeypatch.setattr(loop, "ESTIMATE_RECHECK_S", 0.3)
    train("vae", "digits", str(tmp_path / "run"), {"steps": 120, "width": 8, "batch_size": 8, "sample_every": 1000,
                                                   "checkpoint_every": 1000}, progress=True)
    out = capsys.readouterr().out
    assert "for the remaining" in out and "steps/s, as busy as the cores are now" in out
    updates = [line for line in out.splitlines() if line.startswith("now about")]
    assert updates and "(slower than the 100.00 steps/s estimated: the cores are busier)" in updates[0]
    assert " steps at 20.00 steps/s (slower than the " in updates[-1]  # it settles on the new rate
