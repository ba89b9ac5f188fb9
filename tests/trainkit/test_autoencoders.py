"""AE, VAE and VQ-VAE (+ its prior): training that resumes bit-identically, reconstruct() on every
backend, the prior's sampling, evaluation, and the errors their users will meet."""

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
from gen.trainkit.eval.evaluate import evaluate_run
from gen.trainkit.train import train
from gen.trainkit.families.vqvae.prior import train_prior
from tests.cli.test_cli import gen_here as gen  # in process: the CLI path without a new interpreter

FAST = {"log_every": 5, "sample_every": 100, "checkpoint_every": 4}
VQ = {"width": 8, "batch_size": 8, "codebook_size": 16, "code_dim": 4, **FAST}
PRIOR = {"prior_dim": 16, "prior_layers": 1, "prior_heads": 2, "batch_size": 8, **FAST}


def same_state(a_path, b_path):
    a, _ = load_safetensors(a_path)
    b, _ = load_safetensors(b_path)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_vqvae_and_prior_resume_bit_identically(tmp_path):
    whole = train("vqvae", "digits", str(tmp_path / "whole"), {**VQ, "steps": 8, "dead_code_threshold": 4.0}, progress=False)
    half = train("vqvae", "digits", str(tmp_path / "half"), {**VQ, "steps": 4, "dead_code_threshold": 4.0}, progress=False)
    resumed = train("vqvae", "digits", str(half.path), {"steps": 8}, resume=True, progress=False)
    assert same_state(whole.state_path, resumed.state_path)  # EMA codebook, its restarts and the optimizer
    logged = [json.loads(line) for line in open(whole.path / "metrics.jsonl").read().splitlines()]
    assert {"perplexity", "restarted", "commitment"} <= set(logged[-1]) and logged[-1]["perplexity"] > 1
    p_whole = train_prior(str(whole.path), str(tmp_path / "p-whole"), {**PRIOR, "steps": 6}, progress=False)
    p_half = train_prior(str(whole.path), str(tmp_path / "p-half"), {**PRIOR, "steps": 3}, progress=False)
    p_resumed = train_prior(str(whole.path), str(p_half.path), {"steps": 6}, resume=True, progress=False)
    assert same_state(p_whole.state_path, p_resumed.state_path)  # dropout draws replayed too


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("autoencoders")
    out = {"vqvae": train("vqvae", "digits", str(root / "vqvae"), {**VQ, "steps": 40}, progress=False),
           "ae": train("ae", "digits", str(root / "ae"), {"width": 8, "batch_size": 16, "steps": 20, **FAST}, progress=False),
           "vae": train("vae", "digits", str(root / "vae"), {"width": 8, "batch_size": 16, "steps": 20, **FAST}, progress=False)}
    out["prior"] = train_prior(str(out["vqvae"].path), str(root / "prior"), {**PRIOR, "steps": 30}, progress=False)
    bundles = {k: export_run(str(r.path), str(root / f"bundle-{k}"), precisions=("fp32", "fp16"), progress=lambda *_: None)
               for k, r in out.items()}
    return root, out, bundles


def test_reconstruct_on_every_backend_and_precision(runs):
    _, _, bundles = runs
    x = load_dataset("digits").test_x[:5]
    for name in ("ae", "vae", "vqvae", "prior"):
        ort = Sampler(str(bundles[name])).reconstruct(x)
        eager = Sampler(str(bundles[name]), backend="eager").reconstruct(x)
        assert ort.shape == (5, 1, 8, 8) and np.abs(ort - eager).max() <= 1e-3, name
        if name in ("ae", "vae"):  # continuous latents: fp16 stays close (VQ codes may snap elsewhere)
            assert psnr(ort, Sampler(str(bundles[name]), precision="fp16").reconstruct(x)) >= 35, name
        u8 = np.round((x[0, 0] + 1) * 127.5).astype(np.uint8)  # a path, a PIL image and arrays all work
        assert np.array_equal(Sampler(str(bundles[name])).reconstruct(Image.fromarray(u8))[0],
                              Sampler(str(bundles[name])).reconstruct(u8)[0])


def test_the_prior_samples_deterministically_on_every_backend(runs):
    _, _, bundles = runs
    path = str(bundles["prior"])
    a = Sampler(path).generate(n=6, seed=3)
    assert a.shape == (6, 1, 8, 8) and np.array_equal(a, Sampler(path).generate(n=6, seed=3))
    assert not np.array_equal(a, Sampler(path).generate(n=6, seed=4))
    assert np.abs(Sampler(path, backend="eager").generate(n=6, seed=3) - a).max() <= 1e-3
    decoded = Sampler(path, backend="eager")  # decoder fp16 vs fp32 on the same codes
    codes = np.random.default_rng(0).integers(0, 16, (4, 4, 4))
    half = Sampler(path, precision="fp16")
    assert psnr(decoded.backend.run("decoder", {"codes": codes}), half.backend.run("decoder", {"codes": codes})) >= 35


def test_eval_scores_reconstructions_and_prior_samples(runs):
    _, r, _ = runs
    ae = evaluate_run(str(r["ae"].path))
    assert ae["metrics"] == {} and ae["reconstruction"]["psnr_db"] > 5 and "cannot sample" in ae["note"]
    vq = evaluate_run(str(r["vqvae"].path))
    assert vq["reconstruction"]["codebook_size"] == 16 and 1 < vq["reconstruction"]["codebook_perplexity"] <= 16
    prior = evaluate_run(str(r["prior"].path), n=50)
    assert prior["metrics"]["fd_digits"] > 0 and prior["reconstruction"] == vq["reconstruction"]
    vae = evaluate_run(str(r["vae"].path), n=50)
    assert vae["metrics"]["fd_digits"] > 0 and vae["reconstruction"]["psnr_db"] > 5


def test_clear_errors(runs, bundles, tmp_path):
    root, r, b = runs
    with pytest.raises(GenError, match="an autoencoder has no prior over its latents, so it cannot generate"):
        Sampler(str(b["ae"])).generate(n=2)
    with pytest.raises(GenError, match="this VQ-VAE bundle has no prior .*gen train vqvae-prior"):
        Sampler(str(b["vqvae"])).generate(n=2)
    with pytest.raises(GenError, match="reconstruct\\(\\) applies to autoencoder bundles .*a gan bundle has no encoder"):
        Sampler(str(bundles["gan"])).reconstruct(np.zeros((8, 8), np.uint8))
    with pytest.raises(GenError, match="image is 12x8; this model takes 8x8 images"):
        Sampler(str(b["vae"])).reconstruct(np.zeros((8, 12), np.uint8))
    with pytest.raises(GenError, match="is a gan run; the prior is trained on a finished VQ-VAE run"):
        train_prior(str(bundles["gan"].parent / "run-gan"), str(tmp_path / "p"), {"steps": 1}, progress=False)
    with pytest.raises(GenError, match="is a prior run"):
        train_prior(str(r["prior"].path), str(tmp_path / "p"), {"steps": 1}, progress=False)
    assert not (tmp_path / "p").exists()
    # a prior whose VQ-VAE codebook was swapped for another: refused at export, not decoded into garbage
    tensors, meta = load_safetensors(r["prior"].weights_path)
    tensors["model.vqvae.quantizer.embedding"] = tensors["model.vqvae.quantizer.embedding"] + 1.0
    save_safetensors(r["prior"].weights_path, tensors, meta)
    with pytest.raises(GenError, match="the prior was trained on codebook .* but the VQ-VAE weights hold codebook"):
        export_run(str(r["prior"].path), str(tmp_path / "bad"), progress=lambda *_: None)
    assert not (tmp_path / "bad").exists()


def test_cli_trains_a_prior_and_reconstructs(runs, tmp_path):
    _, r, b = runs
    p = gen("train", "vqvae-prior", r["vqvae"].path, "--out", tmp_path / "prior", "--steps", "2", "--prior-dim", "16",
            "--prior-layers", "1", "--quiet")
    assert "prior run written" in p.stdout and (tmp_path / "prior" / "samples.png").is_file()
    u8 = np.round((load_dataset("digits").test_x[0, 0] + 1) * 127.5).astype(np.uint8)
    Image.fromarray(u8).save(tmp_path / "d.png")
    gen("generate", b["vae"], "--reconstruct", "--image", tmp_path / "d.png", "--out", tmp_path / "r.png")
    expected = Sampler(str(b["vae"])).reconstruct(str(tmp_path / "d.png"), output="uint8")[0, ..., 0]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "r.png")), expected)
    p = gen("generate", b["ae"], "--n", "2", "--out", tmp_path / "x.png", check=False)
    assert p.returncode == 2 and "cannot generate" in p.stderr
