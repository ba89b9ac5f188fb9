"""Denoising autoencoder: corruptions, training that resumes bit-identically, its own `gen eval`
table, the bundle on eager and ORT, and the options and inputs it refuses."""

import json

import numpy as np
import pytest
import torch

from gen.errors import GenError
from gen.export.onnx_export import export_run
from gen.export.onnx_io import psnr
from gen.fileio import load_safetensors
from gen.runtime.sampler import Sampler
from gen.trainkit.data import load_dataset
from gen.trainkit.train import train
from tests.cli.test_cli import gen_here as gen  # in process: the CLI path without a new interpreter

FAST = {"width": 8, "batch_size": 16, "log_every": 5, "sample_every": 100, "checkpoint_every": 4}


def test_corruptions_hit_what_they_say():
    from gen.trainkit.families.dae.corruption import corrupt

    x = torch.zeros(64, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    noisy = corrupt(x, "gaussian", 0.1, g)
    assert abs(noisy.std().item() - 0.2) < 0.01  # sigma 0.1 of the [0, 1] range is 0.2 of [-1, 1]
    masked = corrupt(x, "masking", 0.25, g)
    hit = (masked == -1).all(1)  # whole pixels, every channel at once
    assert ((masked == -1).any(1) == hit).all() and abs(hit.float().mean().item() - 0.25) < 0.02
    salted = corrupt(x, "salt-pepper", 0.25, g)
    assert abs((salted == 1).float().mean().item() - 0.125) < 0.02 and abs((salted == -1).float().mean().item() - 0.125) < 0.02


def test_training_resumes_bit_identically_evaluates_and_exports(tmp_path):
    # at the digits' own 8x8 (--image-size 8): the default 16x16 makes gen eval's classical baselines 4x slower
    whole = train("dae", "digits", str(tmp_path / "whole"), {**FAST, "steps": 8}, image_size=8, progress=False)
    half = train("dae", "digits", str(tmp_path / "half"), {**FAST, "steps": 4}, image_size=8, progress=False)
    resumed = train("dae", "digits", str(half.path), {"steps": 8}, resume=True, progress=False)
    a, _ = load_safetensors(whole.state_path)  # weights, Adam moments: the corruption replayed exactly
    b, _ = load_safetensors(resumed.state_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    p = gen("eval", str(whole.path))
    result = json.loads((whole.path / "eval.json").read_text())
    assert list(result["levels"]) == ["sigma 0.1", "sigma 0.2"] and "non-local means" in p.stderr
    for row in result["levels"].values():
        assert set(row) == {"noisy", "restored", "nl_means", "tv"}
        assert 10 < row["noisy"]["psnr_db"] < 30 and 0 < row["restored"]["ssim"] <= 1
    assert result["levels"]["sigma 0.1"]["noisy"]["psnr_db"] > result["levels"]["sigma 0.2"]["noisy"]["psnr_db"] + 4
    assert (whole.path / "eval_restored.png").is_file()  # rows of noisy, restored, clean
    with pytest.raises(GenError, match="--n does not apply to a dae run"):
        from gen.trainkit.eval.evaluate import evaluate_run

        evaluate_run(str(whole.path), n=100)

    bundle = export_run(str(whole.path), str(tmp_path / "bundle"), precisions=("fp32", "fp16"), progress=lambda *_: None)
    noisy = np.round((load_dataset("digits").test_x[:6].transpose(0, 2, 3, 1) + 1) * 127.5).astype(np.uint8)
    ort = Sampler(str(bundle)).generate(image=noisy)
    eager = Sampler(str(bundle), backend="eager").generate(image=noisy)
    assert ort.shape == (6, 1, 8, 8) and np.abs(ort - eager).max() <= 1e-5
    assert psnr(ort, Sampler(str(bundle), precision="fp16").generate(image=noisy)) >= 35
    for kwargs, message in [({}, "a denoising autoencoder restores images: pass image="),
                            ({"image": np.zeros((1, 8, 8, 5), np.uint8)}, "channel"),
                            ({"image": noisy, "steps": 3}, "steps applies to diffusion bundles")]:
        with pytest.raises(GenError, match=message):
            Sampler(str(bundle)).generate(**kwargs)


@pytest.mark.parametrize("args,message", [
    (["--sigma", "1.5"], "--sigma must be from 0.01 to 1.0, got 1.5"),
    (["--amount", "0"], "--amount must be from 0.01 to 0.99, got 0.0"),
    (["--corruption", "blur"], "blur"),
    (["--amount", "0.3"], "--corruption gaussian takes --sigma"),
])
def test_bad_corruption_options_are_refused_naming_the_flag(tmp_path, args, message):
    p = gen("train", "dae", "--out", str(tmp_path / "run"), *args, check=False)
    assert p.returncode != 0 and message in p.stderr, p.stderr
    assert not (tmp_path / "run").exists()


def test_python_options_are_checked_like_the_command_line_and_digits_train_at_16(tmp_path):
    run = train("dae", "digits", str(tmp_path / "default"), {**FAST, "steps": 1}, progress=False)
    assert json.loads((run.path / "config.json").read_text())["image_size"] == 16  # the 8x8 digits upscaled
    with pytest.raises(GenError, match="--sigma must be from 0.01 to 1.0, got 0"):
        train("dae", "digits", str(tmp_path / "run"), {"sigma": 0.0}, progress=False)
    with pytest.raises(GenError, match="--corruption masking takes --amount"):
        train("dae", "digits", str(tmp_path / "run"), {"corruption": "masking", "sigma": 0.1}, progress=False)
