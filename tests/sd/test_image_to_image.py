"""Stable Diffusion img2img and inpainting: gen's samplers against diffusers' own pipelines, from the
same noise and the same image latents (the VAE posterior's mean, which gen uses; diffusers samples it)."""

import numpy as np
import pytest
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline,
                       StableDiffusionInpaintPipeline)
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_img2img as img2img_module
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_inpaint as inpaint_module
from PIL import Image

from gen.errors import GenError
from gen.recipes.registry import load_pipeline
from gen.runtime.sampler import Sampler

PROMPTS = ["a red house by a lake", "a cat"]
REFERENCE = {"ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler}


@pytest.fixture(scope="module")
def fused():
    return load_pipeline("sd-lora", progress=lambda *_: None).pipe


@pytest.fixture(scope="module")
def photo():
    """A real photograph (scikit-learn ships it), cropped to 64 x 64."""
    from sklearn.datasets import load_sample_image

    return np.asarray(Image.fromarray(load_sample_image("china.jpg")[100:356, 200:456]).resize((64, 64)), dtype=np.uint8)


@pytest.fixture(scope="module")
def mask():
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 8:40] = 255  # white: repaint
    return m


def same_noise_and_latents(monkeypatch, module, seed, shape):
    """diffusers draws its noise from torch and samples the VAE posterior; give it gen's host noise
    (the first draw of the seed's numpy generator) and the posterior's mean."""
    noise = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    monkeypatch.setattr(module, "randn_tensor", lambda *args, **kwargs: torch.from_numpy(noise.copy()))
    monkeypatch.setattr(module, "retrieve_latents",
                        lambda encoded, generator=None, sample_mode="sample": encoded.latent_dist.mode())


def reference(fused, cls, module, monkeypatch, scheduler, seed, **kwargs):
    pipe = cls(**fused.components)
    pipe.scheduler = REFERENCE[scheduler].from_config(fused.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    same_noise_and_latents(monkeypatch, module, seed, (len(PROMPTS), 4, 8, 8))
    out = pipe(PROMPTS, negative_prompt=["blurry"] * len(PROMPTS), guidance_scale=7.5, output_type="np", **kwargs).images
    return out.transpose(0, 3, 1, 2) * 2 - 1


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++"])
def test_img2img_matches_diffusers(sd_bundle, fused, photo, monkeypatch, scheduler):
    ref = reference(fused, StableDiffusionImg2ImgPipeline, img2img_module, monkeypatch, scheduler, seed=4,
                    image=Image.fromarray(photo), strength=0.6, num_inference_steps=10)
    ours = Sampler(str(sd_bundle)).generate(PROMPTS, image=photo, strength=0.6, steps=10, scheduler=scheduler, seed=4,
                                            negative_prompt="blurry", guidance=7.5)
    assert ours.shape == ref.shape == (2, 3, 64, 64)
    assert np.abs(ours - ref).max() <= 1e-3


@pytest.mark.parametrize("scheduler,strength", [("ddim", 1.0), ("dpm++", 0.7)])
def test_inpainting_matches_diffusers(sd_bundle, fused, photo, mask, monkeypatch, scheduler, strength):
    ref = reference(fused, StableDiffusionInpaintPipeline, inpaint_module, monkeypatch, scheduler, seed=6,
                    image=Image.fromarray(photo), mask_image=Image.fromarray(mask), strength=strength,
                    num_inference_steps=8, height=64, width=64)
    ours = Sampler(str(sd_bundle)).generate(PROMPTS, image=photo, mask=mask, strength=strength, steps=8,
                                            scheduler=scheduler, seed=6, negative_prompt="blurry", guidance=7.5)
    assert np.abs(ours - ref).max() <= 1e-3


def test_image_inputs_in_every_form_and_on_every_backend(sd_bundle, photo, tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(photo).save(path)
    kw = {"strength": 0.5, "steps": 4, "seed": 2}
    ort = Sampler(str(sd_bundle))
    a = ort.generate("a boat", image=photo, **kw)
    for form in (str(path), Image.open(path), photo[None], photo.transpose(2, 0, 1),
                 photo.astype(np.float32) / 127.5 - 1):
        assert np.array_equal(ort.generate("a boat", image=form, **kw), a)
    eager = Sampler(str(sd_bundle), backend="eager").generate("a boat", image=photo, **kw)
    assert np.abs(eager - a).max() <= 1e-3
    gray = np.asarray(Image.fromarray(photo).convert("L"))  # converted as Pillow's convert("RGB") would
    assert np.array_equal(ort.generate("a boat", image=gray, **kw),
                          ort.generate("a boat", image=np.repeat(gray[..., None], 3, axis=-1), **kw))
    rgba = np.concatenate([photo, np.full((64, 64, 1), 7, np.uint8)], axis=-1)  # the alpha channel dropped
    assert np.array_equal(ort.generate("a boat", image=rgba, **kw), a)
    big = ort.generate("a boat", image=photo, height=96, width=64, **kw)  # resized to the size asked for
    assert big.shape == (1, 3, 96, 64)


@pytest.mark.parametrize("kwargs,message", [
    ({"image": "missing.png"}, "image: no such file: missing.png"),
    ({"image": np.zeros((64, 64, 3), np.uint8), "mask": np.zeros((32, 64), np.uint8)},
     "mask is 64x32 but the image is 64x64"),
    ({"image": np.zeros((64, 64, 3), np.uint8), "strength": 0.0}, r"strength must be in \(0, 1\], got 0.0"),
    ({"image": np.zeros((64, 64, 3), np.uint8), "strength": 1.5}, r"strength must be in \(0, 1\], got 1.5"),
    ({"image": np.zeros((64, 64, 3), np.uint8), "strength": 0.05, "steps": 10}, "runs no step"),
    ({"mask": np.zeros((64, 64), np.uint8)}, "mask applies to image-to-image sampling: pass an image"),
    ({"image": np.zeros((40, 64, 3), np.uint8)}, "image is 64x40: height must be a positive multiple of 16"),
    ({"image": np.full((64, 64, 3), 2.0, np.float32)}, r"float values must be in \[-1, 1\]"),
    ({"image": [np.zeros((64, 64, 3), np.uint8)] * 3}, r"give one image, or one per prompt \(1\); got 3"),
    ({"image": np.zeros((256, 256, 3), np.uint8)}, r"height x width = 256 x 256 = 65536 pixels is over this model's limit"),
])
def test_bad_image_inputs_are_named(sd_bundle, kwargs, message):
    with pytest.raises(GenError, match=message):
        Sampler(str(sd_bundle)).generate("a boat", steps=kwargs.pop("steps", 4), **kwargs)


def test_an_unreadable_file_and_an_image_on_a_family_that_takes_none(sd_bundle, bundles, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(GenError, match="image: cannot read .*bad.png as an image"):
        Sampler(str(sd_bundle)).generate("a boat", image=str(bad))
    with pytest.raises(GenError, match="image applies to image-to-image bundles .*; this is a ddpm bundle"):
        Sampler(str(bundles["ddpm"])).generate(n=1, image=np.zeros((8, 8, 1), np.uint8))


@pytest.fixture(scope="module")
def inpainting_base(tmp_path_factory):
    """A tiny inpainting base (9-channel UNet) saved as a diffusers folder, and its bundle."""
    from gen.export.sd_export import export_sd
    from gen.recipes.tiny_sd import build_tiny_sd

    root = tmp_path_factory.mktemp("inpaint")
    pipe = StableDiffusionInpaintPipeline(**build_tiny_sd(unet_in_channels=9).components)
    pipe.save_pretrained(str(root / "base"), safe_serialization=True)
    bundle = export_sd("sd", str(root / "bundle"), base=str(root / "base"), precisions=("fp32", "fp16"),
                       progress=lambda *_: None)
    return pipe, bundle


@pytest.mark.parametrize("scheduler,strength", [("ddim", 1.0), ("dpm++", 0.75)])
def test_nine_channel_inpainting_unet_matches_diffusers(inpainting_base, photo, mask, monkeypatch, scheduler, strength):
    pipe, bundle = inpainting_base
    ref = reference(pipe, StableDiffusionInpaintPipeline, inpaint_module, monkeypatch, scheduler, seed=3,
                    image=Image.fromarray(photo), mask_image=Image.fromarray(mask), strength=strength,
                    num_inference_steps=8, height=64, width=64)
    ours = Sampler(str(bundle)).generate(PROMPTS, image=photo, mask=mask, strength=strength, steps=8,
                                         scheduler=scheduler, seed=3, negative_prompt="blurry", guidance=7.5)
    assert np.abs(ours - ref).max() <= 1e-3
    host = Sampler(str(bundle))  # the condition's channels appended on the host, step by step
    host.backend.resident_loop = False
    np.testing.assert_array_equal(ours, host.generate(PROMPTS, image=photo, mask=mask, strength=strength, steps=8,
                                                      scheduler=scheduler, seed=3, negative_prompt="blurry", guidance=7.5))
    eager = Sampler(str(bundle), backend="eager").generate(PROMPTS, image=photo, mask=mask, steps=4, seed=3)
    assert np.abs(eager - Sampler(str(bundle)).generate(PROMPTS, image=photo, mask=mask, steps=4, seed=3)).max() <= 1e-3


def test_an_inpainting_model_needs_image_and_mask(inpainting_base, photo):
    _, bundle = inpainting_base
    from gen.runtime.bundle import load_bundle

    b = load_bundle(str(bundle))
    assert b.sampling.inpainting
    assert b.spec.example_for(b) == '--prompt "a red house" --image IN.png --mask MASK.png --out OUT.png'  # after export
    for kwargs in ({}, {"image": photo}):
        with pytest.raises(GenError, match="this is an inpainting model .*pass image= and mask="):
            Sampler(str(bundle)).generate("a boat", steps=2, **kwargs)
