"""Personalization on tiny-sd: textual inversion and DreamBooth (full and LoRA) train, load in plain
diffusers, export, and sample in gen within 1e-3 of diffusers with them loaded; bad input is refused
with nothing written."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline

from gen.errors import GenError
from gen.export.sd_export import export_sd
from gen.fileio import load_safetensors
from gen.recipes.tiny_sd import build_tiny_sd
from gen.runtime.sampler import Sampler
from gen.trainkit.sd.dreambooth import train_dreambooth
from gen.trainkit.sd.textual_inversion import train_textual_inversion
from tests.cli.test_cli import gen_here as gen  # in process: the CLI path without a new interpreter

QUIET = {"progress": False}
SILENT = lambda *_: None  # noqa: E731


def diffusers_images(pipe, prompts, seed, steps=6, guidance=7.5):
    """diffusers' own pipeline from gen's host noise (DDIM)."""
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    latents = np.random.default_rng(seed).standard_normal((len(prompts), 4, 8, 8), dtype=np.float32)
    out = pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, latents=torch.from_numpy(latents),
               height=64, width=64, output_type="np").images
    return out.transpose(0, 3, 1, 2) * 2 - 1


def gen_images(bundle, prompts, seed, steps=6, backend="ort"):
    return Sampler(str(bundle), backend=backend).generate(prompts, steps=steps, scheduler="ddim", seed=seed, guidance=7.5)


@pytest.fixture(scope="module")
def inversion(tmp_path_factory):
    """Two vectors behind one token: diffusers' multi-vector format, the harder case for a tokenizer."""
    root = tmp_path_factory.mktemp("ti")
    run, changes = train_textual_inversion(None, "cat", str(root / "run"), "<cat-toy>", "cat",
                                           {"steps": 12, "num_vectors": 2, "sample_steps": 4}, **QUIET)
    bundle = export_sd("sd", str(root / "bundle"), embeddings=(str(run.path),), image_check=False, progress=SILENT)
    return run.path, changes, bundle


def test_textual_inversion_changes_only_its_token(inversion):
    run, changes, _ = inversion
    assert changes["token"] > 1e-3
    assert changes["unrelated"] == 0.0  # prompts without the token: the base's images, bit for bit
    tensors, meta = load_safetensors(run / "learned_embeds.safetensors")
    assert list(tensors) == ["<cat-toy>"] and tensors["<cat-toy>"].shape == (2, 64) and meta == {"format": "pt"}


def test_textual_inversion_loads_in_diffusers_and_gen_matches_it(inversion):
    run, _, bundle = inversion
    pipe = build_tiny_sd()
    base_rows = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    pipe.load_textual_inversion(str(run / "learned_embeds.safetensors"), use_safetensors=True)
    rows = pipe.text_encoder.get_input_embeddings().weight
    assert torch.equal(rows[:len(base_rows)], base_rows)  # no other row moved
    prompts = ["a photo of a <cat-toy>", "a <cat-toy> on a red rug"]
    ref = diffusers_images(pipe, prompts, seed=4)
    assert np.abs(gen_images(bundle, prompts, 4) - ref).max() <= 1e-3
    assert np.abs(gen_images(bundle, prompts, 4, backend="eager") - ref).max() <= 1e-3
    plain = diffusers_images(build_tiny_sd(), prompts, seed=4)
    assert np.abs(plain - ref).mean() > 1e-3  # the token means something now
    from gen.runtime.bundle import load_bundle

    b = load_bundle(bundle)  # the command `gen export` suggests trying uses the learned token
    assert b.spec.example_for(b) == '--prompt "a photo of <cat-toy>" --n 4 --out grid.png'


def test_textual_inversion_refuses_a_known_token_and_an_empty_folder(tmp_path):
    with pytest.raises(GenError, match="already in the tokenizer's vocabulary"):
        train_textual_inversion(None, "cat", str(tmp_path / "a"), "x", None, {"steps": 2}, **QUIET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenError, match="holds no images"):
        train_textual_inversion(None, str(tmp_path / "empty"), str(tmp_path / "b"), "<t>", None, {"steps": 2}, **QUIET)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


@pytest.fixture(scope="module")
def dreambooth_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("db")
    opts = {"steps": 6, "lr": 1e-4, "num_class_images": 2, "batch_size": 1, "sample_steps": 4}
    common = {"class_prompt": "a photo of a cat", "prior_preservation": True, **QUIET}
    full, full_changes = train_dreambooth(None, "cat", str(root / "full"), "a photo of sks cat", opts, **common)
    lora, _ = train_dreambooth(None, "cat", str(root / "lora"), "a photo of sks cat", {**opts, "lr": 1e-2}, lora=True,
                               **common)
    return full.path, full_changes, lora.path, root


def test_dreambooth_full_is_a_base_folder_diffusers_and_gen_agree_on(dreambooth_runs):
    full, changes, _, root = dreambooth_runs
    assert changes["instance"] > 0 and set(changes) == {"instance", "class", "unrelated"}
    assert len(list((full / "class_images").glob("*.png"))) == 2
    pipe = StableDiffusionPipeline.from_pretrained(str(full), safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True, use_safetensors=True)
    bundle = export_sd("sd", str(root / "full-bundle"), base=str(full), image_check=False, progress=SILENT)
    prompts = ["a photo of sks cat"]
    ref = diffusers_images(pipe, prompts, seed=2)
    assert np.abs(gen_images(bundle, prompts, 2) - ref).max() <= 1e-3
    assert np.abs(gen_images(bundle, prompts, 2, backend="eager") - ref).max() <= 1e-3
    assert np.abs(diffusers_images(build_tiny_sd(), prompts, seed=2) - ref).mean() > 1e-4  # it trained


def test_dreambooth_lora_loads_in_diffusers_and_gen_agrees(dreambooth_runs):
    _, _, lora, root = dreambooth_runs
    pipe = build_tiny_sd()
    pipe.load_lora_weights(str(lora), weight_name="lora.safetensors")
    bundle = export_sd("sd-lora", str(root / "lora-bundle"), lora=str(lora), image_check=False, progress=SILENT)
    prompts = ["a photo of sks cat"]
    ref = diffusers_images(pipe, prompts, seed=6)
    assert np.abs(gen_images(bundle, prompts, 6) - ref).max() <= 1e-3
    assert np.abs(diffusers_images(build_tiny_sd(), prompts, seed=6) - ref).mean() > 1e-4


def test_force_replaces_a_full_dreambooth_run_with_a_lora_one_entirely(dreambooth_runs, tmp_path):
    import shutil

    full, _, _, _ = dreambooth_runs
    out = tmp_path / "run"
    shutil.copytree(full, out)
    (out / "notes.txt").write_text("mine")  # not gen's: carried over
    train_dreambooth(None, "cat", str(out), "a photo of sks cat", {"steps": 1, "sample_steps": 2}, lora=True, force=True,
                     **QUIET)
    assert (out / "lora.safetensors").is_file() and (out / "notes.txt").read_text() == "mine"
    assert not any((out / name).exists() for name in ("model_index.json", "unet", "class_images", "text_encoder"))


def test_dreambooth_refusals_write_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenError, match="holds no images"):
        train_dreambooth(None, str(tmp_path / "empty"), str(tmp_path / "a"), "a photo of sks cat", {"steps": 2}, **QUIET)
    with pytest.raises(GenError, match="needs --class-prompt"):
        train_dreambooth(None, "cat", str(tmp_path / "b"), "a photo of sks cat", {"steps": 2}, prior_preservation=True, **QUIET)
    r = gen("train", "dreambooth", "--data", tmp_path / "empty", "--out", tmp_path / "c", "--steps", "2", check=False)
    assert r.returncode != 0 and "holds no images" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
