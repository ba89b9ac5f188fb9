"""srgan: its MS-SSIM against scikit-image, the low-resolution input made as sr4x's, training that
resumes bit-identically (discriminator and a VGG-layout feature file included), paired evaluation from
the small images, and the bundle (8x8 in, 32x32 out) on ORT, eager, fp16 and the CLI."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gen.errors import GenError
from gen.export.onnx_export import export_run
from gen.export.onnx_io import psnr
from gen.fileio import load_safetensors, save_safetensors
from gen.runtime.sampler import Sampler
from gen.trainkit.data import load_dataset
from gen.trainkit.families.srgan import losses
from gen.trainkit.families.srgan.degrade import shrink
from gen.trainkit.train import train
from tests.cli.test_cli import gen_here as gen

FAST = {"log_every": 5, "sample_every": 100, "checkpoint_every": 4}
TINY = {"width": 8, "blocks": 1, "batch_size": 4, "steps": 6, **FAST}


def test_ssim_matches_scikit_image_and_ms_ssim_orders_distortions():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.3, x.shape), -1, 1).astype(np.float32)
    ours = losses.ssim(torch.from_numpy(x), torch.from_numpy(y), taps=11).numpy()
    # scikit-image's Gaussian SSIM: sigma 1.5 over 11 taps, population covariances (the loss cuts it to 7 taps)
    ref = [structural_similarity(p, q, data_range=2.0, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False) for p, q in zip(x, y)]
    assert np.allclose(ours, ref, atol=1e-5)
    t = torch.from_numpy(x)
    assert torch.allclose(losses.ms_ssim(t, t), torch.ones(2), atol=1e-6)
    scores = [losses.ms_ssim(t, t + s * torch.from_numpy(rng.normal(0, 1, x.shape).astype(np.float32))).mean()
              for s in (0.05, 0.2, 0.5)]
    assert scores[0] > scores[1] > scores[2]
    z = t.clone().requires_grad_(True)
    losses.msssim_l1(z, torch.from_numpy(y)).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 28 px"):
        losses.ms_ssim(t[..., :16, :16], t[..., :16, :16])


def test_the_low_resolution_input_is_how_sr4x_inputs_were_made():
    d = load_dataset("sr4x", paired=True)
    a, b = d.test_x[:8, :3], d.test_x[:8, 3:]
    small = shrink(b, 4)
    assert small.shape == (8, 3, 8, 8)
    u8 = np.round((small + 1) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
    up = np.stack([np.asarray(Image.fromarray(s).resize((32, 32), Image.Resampling.BICUBIC)) for s in u8])
    assert np.array_equal(up.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1, a)  # sr4x's input, bit for bit


def _vgg_file(path):
    """A random network in torchvision's VGG `features` layout: conv 0, 2, pool, conv 5, pool, conv 10."""
    g = torch.Generator().manual_seed(0)
    t = {}
    for i, (cin, cout) in {0: (3, 4), 2: (4, 4), 5: (4, 8), 10: (8, 8)}.items():
        t[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.2
        t[f"features.{i}.bias"] = torch.zeros(cout)
    save_safetensors(path, t, {})
    return path


def test_training_resumes_bit_identically_and_eval_reads_the_small_images(tmp_path, quick_metric_classifier):
    vgg = str(_vgg_file(tmp_path / "vgg.safetensors"))
    opts = {**TINY, "loss": "perceptual", "features": vgg, "steps": 8}
    whole = train("srgan", "sr4x", str(tmp_path / "whole"), opts, progress=False)
    half = train("srgan", "sr4x", str(tmp_path / "half"), {**opts, "steps": 4}, progress=False)
    resumed = train("srgan", "sr4x", str(half.path), {"steps": 8}, resume=True, progress=False)
    a, _ = load_safetensors(whole.state_path)
    b, _ = load_safetensors(resumed.state_path)
    assert any(k.startswith("module.discriminator.") for k in a)  # the perceptual loss comes with SRGAN's adversarial term
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((whole.path / "config.json").read_text())
    assert config["adv_weight"] == 1e-3 and config["scale"] == 4
    logged = json.loads((whole.path / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"l1", "feature", "adv", "loss_d"} <= set(logged)
    assert Image.open(whole.path / "samples.png").size[0] > 0  # rows of input | bicubic | srgan | target
    from gen.trainkit.eval.evaluate import evaluate_run

    result = evaluate_run(str(whole.path))
    assert result["held_out_pairs"] == len(load_dataset("sr4x", paired=True).test_x)
    assert set(result["metrics"]) == {"l1", "psnr_db", "ssim", "fd"}
    # 8 steps from a generator that starts as bicubic: still near the bicubic input's figures
    assert abs(result["metrics"]["psnr_db"] - result["input_as_output"]["psnr_db"]) < 3


def test_options_are_refused_by_name(tmp_path):
    for opts, message in [({"features": "x.safetensors"}, "--features is the feature network of --loss perceptual"),
                          ({"loss": "perceptual", "features": str(tmp_path / "none")}, "file not found"),
                          ({"loss": "mse"}, "unknown --loss 'mse'")]:
        with pytest.raises(GenError, match=message):
            train("srgan", "sr4x", str(tmp_path / "run"), {**TINY, **opts}, progress=False)
    save_safetensors(tmp_path / "odd.safetensors", {"w": torch.zeros(2)}, {})
    with pytest.raises(GenError, match="unknown layout"):
        train("srgan", "sr4x", str(tmp_path / "run"), {**TINY, "loss": "perceptual",
                                                       "features": str(tmp_path / "odd.safetensors")}, progress=False)
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("srgan")
    run = train("srgan", "sr4x", str(root / "run"), {**TINY, "loss": "msssim-l1"}, progress=False)
    return export_run(str(run.path), str(root / "bundle"), precisions=("fp32", "fp16"), progress=lambda *_: None)


def test_bundle_reads_the_small_image_on_every_backend(bundle, tmp_path):
    small = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    ort = Sampler(str(bundle)).generate(image=small)
    eager = Sampler(str(bundle), backend="eager").generate(image=small)
    assert ort.shape == (3, 3, 32, 32) and np.abs(ort - eager).max() <= 1e-5
    assert psnr(ort, Sampler(str(bundle), precision="fp16").generate(image=small)) >= 35
    flat = Sampler(str(bundle)).generate(image=np.full((8, 8, 3), 77, np.uint8))  # exactly its bicubic upscale
    assert np.abs(flat - (77 / 127.5 - 1)).max() < 1e-5
    for kwargs, message in [({}, "this is an image-to-image bundle: pass image="),
                            ({"image": np.zeros((8, 12, 3), np.uint8)}, "image is 12x8; this model takes 8x8"),
                            ({"image": np.zeros((1, 8, 8, 5), np.uint8)}, "is not an image"),
                            ({"image": np.full((8, 8, 3), 2.0, np.float32)}, r"float values must be in \[-1, 1\]"),
                            ({"image": small[0], "direction": "AtoB"}, "direction")]:
        with pytest.raises(GenError, match=message):
            Sampler(str(bundle)).generate(**kwargs)
    Image.fromarray(small[0]).save(tmp_path / "small.png")
    p = gen("generate", bundle, "--image", tmp_path / "small.png", "--out", tmp_path / "big.png")
    assert Image.open(tmp_path / "big.png").size == (32, 32) and "resized" not in p.stdout
    assert np.array_equal(np.asarray(Image.open(tmp_path / "big.png")),
                          np.round((ort[0].transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8))
    p = gen("export", bundle.parent / "run", "--out", tmp_path / "int8", "--int8", check=False)
    assert p.returncode == 2 and "no representative inputs" in p.stderr
