"""pix2pix: paired data, training that resumes bit-identically, paired evaluation, and the bundle
through every backend and the CLI's image and folder modes."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gen.fileio import load_safetensors
from gen.errors import GenError
from gen.export.onnx_io import psnr
from gen.runtime.sampler import Sampler
from gen.trainkit.data import load_dataset
from gen.trainkit.train import train
from tests.cli.test_cli import gen_here as gen  # in process: the CLI path without a new interpreter

FAST = {"log_every": 5, "sample_every": 100, "checkpoint_every": 4}


def test_embedded_paired_defaults_split_by_place(tmp_path):
    for spec, channels in (("colorize", (1, 3)), ("sr4x", (3, 3)), ("edges", (1, 3))):
        d = load_dataset(spec, paired=True)
        assert d.input_channels == channels[0] and d.channels == sum(channels)
        assert d.train_x.shape[2:] == (32, 32) and len(d.train_x) > 400 and len(d.test_x) > 100
        assert d.train_x.min() >= -1 and d.train_x.max() <= 1
    col = load_dataset("colorize", paired=True)
    gray_of_target = (0.299 * col.train_x[:, 1] + 0.587 * col.train_x[:, 2] + 0.114 * col.train_x[:, 3])
    assert np.abs(gray_of_target - col.train_x[:, 0]).mean() < 0.01  # the input is the target's luma


def test_paired_folders_match_by_name_and_refuse_what_does_not(tmp_path):
    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (tmp_path / "pairs" / side).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "pairs" / side / f"{i}.png")
    d = load_dataset(str(tmp_path / "pairs"), paired=True)
    assert d.input_channels == 3 and d.train_x.shape[1:] == (6, 16, 16) and len(d.train_x) + len(d.test_x) == 6
    flipped = load_dataset(str(tmp_path / "pairs"), paired=True, direction="BtoA")
    assert load_dataset(str(tmp_path / "pairs")).class_names == ["A", "B"]  # to other families: two classes
    assert np.array_equal(flipped.train_x[:, :3], d.train_x[:, 3:])
    (tmp_path / "pairs" / "B" / "0.png").rename(tmp_path / "pairs" / "B" / "zero.png")
    with pytest.raises(GenError, match=r"pair images by file name, but 2 do not match .*use gen train cyclegan"):
        load_dataset(str(tmp_path / "pairs"), paired=True)
    with pytest.raises(GenError, match="pix2pix trains on paired data: .*'digits' is none of these"):
        train("pix2pix", "digits", str(tmp_path / "run"), {"steps": 1}, progress=False)
    assert not (tmp_path / "run" / "config.json").exists()
    wide = tmp_path / "wide"
    wide.mkdir()
    Image.fromarray(rng.integers(0, 255, (16, 30, 3), dtype=np.uint8)).save(wide / "x.png")
    with pytest.raises(GenError, match="twice as wide as high"):
        load_dataset(str(wide), paired=True, side_by_side=True)


def test_training_resumes_bit_identically_and_eval_scores_pairs(tmp_path, quick_metric_classifier):
    opts = {"width": 8, "batch_size": 4, "steps": 8, **FAST}
    whole = train("pix2pix", "sr4x", str(tmp_path / "whole"), opts, progress=False)
    half = train("pix2pix", "sr4x", str(tmp_path / "half"), {**opts, "steps": 4}, progress=False)
    resumed = train("pix2pix", "sr4x", str(half.path), {"steps": 8}, resume=True, progress=False)
    a, _ = load_safetensors(whole.state_path)  # every module, optimizer and BatchNorm statistic
    b, _ = load_safetensors(resumed.state_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((whole.path / "config.json").read_text())["gan_weight"] == 0.0  # restoration: L1 alone
    grid = Image.open(whole.path / "samples.png")
    assert grid.size[0] > 0  # rows of input | output | target
    from gen.trainkit.eval.evaluate import evaluate_run

    result = evaluate_run(str(whole.path))
    assert result["held_out_pairs"] == len(load_dataset("sr4x", paired=True).test_x)
    assert set(result["metrics"]) == {"l1", "psnr_db", "ssim", "fd"} and result["input_as_output"]["psnr_db"] > 15
    assert result["input_as_output"]["fd"] > 0 and result["metrics"]["fd"] > 0  # FD to the held-out targets
    assert json.loads((whole.path / "eval.json").read_text())["metrics"] == result["metrics"]


def test_bundle_ort_eager_fp16_and_image_rules(bundles):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (3, 32, 32, 1), dtype=np.uint8)
    ort = Sampler(str(bundles["pix2pix"])).generate(image=gray)
    eager = Sampler(str(bundles["pix2pix"]), backend="eager").generate(image=gray)
    assert ort.shape == (3, 3, 32, 32) and np.abs(ort - eager).max() <= 1e-3
    half = Sampler(str(bundles["pix2pix"]), precision="fp16").generate(image=gray)
    assert psnr(ort, half) >= 35
    colour = np.repeat(gray, 3, axis=-1)  # a colour image to a gray-reading model: converted to luma
    assert np.abs(Sampler(str(bundles["pix2pix"])).generate(image=colour) - ort).max() <= 1e-6
    big = np.asarray(Image.fromarray(gray[0, ..., 0]).resize((64, 64)))  # resized to the model's size
    assert Sampler(str(bundles["pix2pix"])).generate(image=big).shape == (1, 3, 32, 32)
    for kwargs, message in [({}, "this is an image-to-image bundle: pass image="),
                            ({"image": np.zeros((32, 48), np.uint8)}, "image is 48x32; this model takes 32x32"),
                            ({"image": gray, "n": 2}, "n = 2 but 3 images were given"),
                            ({"image": gray[0], "steps": 3}, "steps applies to diffusion bundles"),
                            ({"image": gray[:2, ..., 0]},  # two gray images or one gray+alpha CHW: not guessed
                             r"for 2 gray images give shape \[2, 32, 32, 1\] or a list")]:
        with pytest.raises(GenError, match=message):
            Sampler(str(bundles["pix2pix"])).generate(**kwargs)


def test_cli_translates_one_image_and_a_folder(bundles, tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "in").mkdir()
    for i in range(3):  # twice the model's size: resized, and said so
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / "in" / f"p{i}.png")
    p = gen("generate", bundles["pix2pix"], "--image", tmp_path / "in" / "p0.png", "--out", tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").size == (32, 32)  # the image itself, not a grid
    assert p.stdout.strip().endswith(f"-> {tmp_path / 'one.png'} (64x64 input resized to the model's 32x32)")
    p = gen("generate", bundles["pix2pix"], "--image", tmp_path / "in", "--out", tmp_path / "out")
    assert "3 images" in p.stdout and sorted(f.name for f in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    assert "(64x64 input resized to the model's 32x32)" in p.stdout
    one = np.asarray(Image.open(tmp_path / "one.png"))
    assert np.array_equal(one, np.asarray(Image.open(tmp_path / "out" / "p0.png")))
    (tmp_path / "out" / "p1.png").write_bytes(b"mine")  # same-name files: refused before a byte is written
    p = gen("generate", bundles["pix2pix"], "--image", tmp_path / "in", "--out", tmp_path / "out", check=False)
    assert p.returncode == 2 and "already holds p0.png, p1.png, p2.png (3 of the 3 names" in p.stderr and "--force" in p.stderr
    assert (tmp_path / "out" / "p1.png").read_bytes() == b"mine"
    p = gen("generate", bundles["pix2pix"], "--image", tmp_path / "in", "--out", tmp_path / "in" / "sub", check=False)
    assert p.returncode == 2 and "lies inside the input" in p.stderr and not (tmp_path / "in" / "sub").exists()
    p = gen("generate", bundles["pix2pix"], "--image", tmp_path / "in", "--out", tmp_path / "out", "--force")
    assert "(3 replaced)" in p.stdout and np.array_equal(one, np.asarray(Image.open(tmp_path / "out" / "p0.png")))
    (tmp_path / "in" / "bad.png").write_bytes(b"nope")
    p = gen("generate", bundles["pix2pix"], "--image", tmp_path / "in", "--out", tmp_path / "out2", check=False)
    assert p.returncode == 2 and "cannot read" in p.stderr and "bad.png" in p.stderr


def test_a_folder_that_cannot_be_translated_whole_is_named_and_leaves_no_empty_output(bundles, tmp_path):
    rng = np.random.default_rng(3)
    (tmp_path / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 60), dtype=np.uint8)).save(tmp_path / "in" / "wide.png")
    p = gen("generate", bundles["pix2pix"], "--image", tmp_path / "in", "--out", tmp_path / "out", check=False)
    assert p.returncode == 2 and "wide.png: image is 60x40" in p.stderr and "0 image(s) were written" in p.stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "in" / "wide.png").unlink()
    for suffix in (".png", ".jpg"):  # the same name twice: both would be written as x.png
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "in" / f"x{suffix}")
    p = gen("generate", bundles["pix2pix"], "--image", tmp_path / "in", "--out", tmp_path / "out", check=False)
    assert p.returncode == 2 and f"x.jpg and x.png would both be written as {tmp_path / 'out'}/x.png" in p.stderr, p.stderr
    assert not (tmp_path / "out").exists()
