"""Stable Diffusion bundles: gen's ORT and eager samplers against diffusers' own pipeline."""

import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from gen.errors import GenError
from gen.export.onnx_io import psnr
from gen.recipes.registry import load_pipeline
from gen.runtime.sampler import Sampler

PROMPTS = ["a red house by a lake", "a cat"]
REFERENCE = {"ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler, "euler": EulerDiscreteScheduler}


@pytest.fixture(scope="module")
def fused():
    """diffusers' pipeline with the same demo LoRA fused: what the bundle must reproduce."""
    return load_pipeline("sd-lora", progress=lambda *_: None).pipe


def diffusers_images(pipe, scheduler, seed, steps, height=64, width=64, guidance=7.5, negative="blurry"):
    pipe.scheduler = REFERENCE[scheduler].from_config(pipe.scheduler.config)
    shape = (len(PROMPTS), 4, height // 8, width // 8)
    latents = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)  # gen's host noise
    out = pipe(PROMPTS, negative_prompt=[negative] * len(PROMPTS), num_inference_steps=steps, guidance_scale=guidance,
               latents=torch.from_numpy(latents), height=height, width=width, output_type="np").images
    return out.transpose(0, 3, 1, 2) * 2 - 1


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++", "euler"])
def test_ort_matches_diffusers_with_the_lora_fused(sd_bundle, fused, scheduler):
    ref = diffusers_images(fused, scheduler, seed=3, steps=12)
    kw = {"negative_prompt": "blurry", "steps": 12, "scheduler": scheduler, "seed": 3, "guidance": 7.5}
    ours = Sampler(str(sd_bundle), backend="ort").generate(PROMPTS, **kw)
    assert ours.shape == ref.shape == (2, 3, 64, 64)
    assert np.abs(ours - ref).max() <= 1e-3
    half = Sampler(str(sd_bundle), backend="ort", precision="fp16").generate(PROMPTS, **kw)
    assert psnr(ref, half) >= 30.0


def test_non_square_size_matches_diffusers(sd_bundle, fused):
    ref = diffusers_images(fused, "ddim", seed=5, steps=6, height=64, width=96)
    ours = Sampler(str(sd_bundle)).generate(PROMPTS, negative_prompt="blurry", steps=6, scheduler="ddim", seed=5,
                                            height=64, width=96)
    assert ours.shape == (2, 3, 64, 96)
    assert np.abs(ours - ref).max() <= 1e-3


def test_eager_equals_ort_and_lcm_is_seeded(sd_bundle):
    kw = {"n": 2, "steps": 4, "scheduler": "lcm", "guidance": 1.0, "seed": 11}
    ort_images = Sampler(str(sd_bundle), backend="ort").generate("a blue bird", **kw)
    eager = Sampler(str(sd_bundle), backend="eager").generate("a blue bird", **kw)
    assert np.abs(ort_images - eager).max() <= 1e-3
    again = Sampler(str(sd_bundle), backend="ort").generate("a blue bird", **kw)
    other = Sampler(str(sd_bundle), backend="ort").generate("a blue bird", **{**kw, "seed": 12})
    assert np.array_equal(ort_images, again) and np.abs(ort_images - other).max() > 0.05


def test_prompt_changes_the_image(sd_bundle):
    s = Sampler(str(sd_bundle))
    a = s.generate("a red house", steps=5, seed=0)
    b = s.generate("a green tree", steps=5, seed=0)
    assert np.abs(a - b).mean() > 1e-3


def test_manifest_records_components_and_parity(sd_bundle):
    m = json.loads((sd_bundle / "gen.json").read_text())
    assert m["family"] == "sd" and set(m["components"]) == {"text_encoder", "unet", "vae_decoder", "vae_encoder"}
    for name, record in m["parity"].items():
        if name in m["components"]:
            assert record["ort_fp32_vs_eager_max_abs"] <= 1e-4, name
            assert record["ort_fp16_vs_fp32"]["psnr_db"] >= 40, name
    assert m["parity"]["images_fp16_vs_fp32"]["psnr_db"] >= 30
    assert m["source"]["lora"]["scale"] == 1.0 and "demo LoRA" in " ".join(m["source"]["notes"])
    assert (sd_bundle / "tokenizer" / "tokenizer.json").is_file()


@pytest.mark.parametrize("kwargs,message", [
    ({"prompt": []}, "the list is empty"),
    ({"prompt": ["ok", 3]}, "every entry must be a string"),
    ({"prompt": "x", "height": 60}, "height must be a positive multiple of 16"),
    ({"prompt": "x", "width": 0}, "width must be a positive multiple of 16"),
    ({"prompt": None}, "pass a prompt"),
    ({"prompt": "x", "labels": 3}, "labels apply to class-conditional"),
    ({"prompt": "x", "negative_prompt": ["a", "b"]}, "negative_prompt: give one, or one per prompt"),
    ({"prompt": "x", "scheduler": "pndm"}, "unknown scheduler"),
])
def test_bad_arguments_are_named(sd_bundle, kwargs, message):
    with pytest.raises(GenError, match=message):
        Sampler(str(sd_bundle)).generate(**kwargs)


def test_prompt_on_a_non_text_bundle_is_refused(bundles):
    with pytest.raises(GenError, match="prompt applies to text-to-image bundles"):
        Sampler(str(bundles["gan"])).generate("a red house")
    with pytest.raises(GenError, match="pass the number of images as n=16"):
        Sampler(str(bundles["gan"])).generate(16)


def test_bundle_without_tokenizer_is_refused(sd_bundle, tmp_path):
    broken = tmp_path / "no-tokenizer"
    shutil.copytree(sd_bundle, broken)
    shutil.rmtree(broken / "tokenizer")
    with pytest.raises(GenError, match="tokenizer"):
        Sampler(str(broken)).generate("a red house")
