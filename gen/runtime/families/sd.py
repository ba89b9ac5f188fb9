"""Stable Diffusion bundles (text-to-image): prompts -> text embeddings -> latent denoising loop ->
VAE decode, as diffusers' StableDiffusionPipeline does it, on any backend.

Classifier-free guidance runs unconditional and conditional halves in one UNet call (negative
prompt first, as diffusers orders them), and the text encoder encodes both halves in one call too.
Initial latents are drawn on the host with numpy, so a seed gives the same images on every backend;
passing the same latents to diffusers (`latents=`) gives diffusers' images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.errors import GenError
from gen.runtime.denoise import denoise
from gen.runtime.families import Limits
from gen.runtime.families.diffusion import DiffusionFamily, DiffusionSampling
from gen.runtime.validate import example_feeds

BENCH_PROMPT = "a photograph of an astronaut riding a horse"


@dataclass
class SdSampling(DiffusionSampling):
    vae_scaling_factor: float = 0.18215  # latents are divided by it before the VAE decoder
    vae_scale_factor: int = 8  # pixels per latent
    latent_channels: int = 4
    unet_multiple: int = 1  # the UNet's own downsampling: latent sizes must be multiples of it


class StableDiffusion(DiffusionFamily):
    name = "sd"
    components = ("text_encoder", "unet", "vae_decoder")
    Sampling = SdSampling
    takes = ("prompt", "negative_prompt", *DiffusionFamily.takes, "height", "width")
    required = {"prompt": "this is a text-to-image bundle: pass a prompt, e.g. generate(\"a red house\")"}
    refusals = {"labels": "labels apply to class-conditional bundles; this one is conditioned on a prompt"}
    variable_size = True
    # a UNet call holds 2 x images latents (guidance) and self-attention grows with the pixel count
    # squared: 16 images at up to 4x the native pixels (1024 x 1024 for SD 1.5) per call
    limits = Limits(n=16, steps=500)

    def check_manifest(self, manifest):
        if manifest.text is None:
            raise GenError("lacks 'text' (the tokenizer and its settings) that every sd bundle has")
        return super().check_manifest(manifest)

    def guided(self, bundle):
        return True

    def check(self, bundle, args):
        super().check(bundle, args)
        args["height"], args["width"] = self.size(bundle, args.get("height"), args.get("width"))

    @staticmethod
    def size(bundle, height, width) -> tuple[int, int]:
        s = bundle.sampling
        height = bundle.image.height if height is None else height
        width = bundle.image.width if width is None else width
        multiple = max(8, s.vae_scale_factor * s.unet_multiple)
        for name, v in (("height", height), ("width", width)):
            if v < multiple or v % multiple:
                raise GenError(f"{name} must be a positive multiple of {multiple} for this model, got {v!r}")
        return int(height), int(width)

    def routine(self, backend):
        return TextToImage(self, backend)

    def example_feeds(self, bundle, component, batch):
        """Token ids up to the pad token, which is inside the vocabulary; the UNet sees the
        CFG-doubled batch in sampling."""
        s, img = bundle.sampling, bundle.image
        dims = {"height": img.height, "width": img.width, "latent_height": img.height // s.vae_scale_factor,
                "latent_width": img.width // s.vae_scale_factor}
        return example_feeds(bundle.signature(component), batch, num_classes=bundle.manifest.text.pad_id + 1, dims=dims)

    def bench_arguments(self, steps):
        return {"prompt": BENCH_PROMPT, "steps": steps}

    def images_per_request(self, args):
        return args.get("n", 1) * len(args.get("prompt", [""]))


class TextToImage:
    """One Sampler's text-to-image routine: the tokenizer is loaded once, here."""

    def __init__(self, family: StableDiffusion, backend):
        from gen.runtime.prompts import PromptTokenizer

        bundle = backend.bundle
        text = bundle.manifest.text
        self.family, self.backend, self.sampling = family, backend, bundle.sampling
        self.tokenizer = PromptTokenizer(bundle.resolve(text.tokenizer), text.max_length, text.pad_id)

    def __call__(self, n, rng, args, on_step=None):
        prompts = [p for p in args["prompt"] for _ in range(n)]
        if "negative_prompt" not in args:
            negatives = [""] * len(prompts)
        else:
            negatives = args["negative_prompt"]
            if len(negatives) == 1:
                negatives = negatives * len(prompts)
            elif len(negatives) * n != len(prompts):
                raise GenError(f"negative_prompt: give one, or one per prompt ({len(prompts) // n}); got {len(negatives)}")
            else:
                negatives = [p for p in negatives for _ in range(n)]
        bundle = self.backend.bundle
        sched = self.family.scheduler(bundle, args)
        h, w = args["height"], args["width"]
        w_guidance = self.family.guidance(bundle, args)
        guided = w_guidance > 1.0  # diffusers' rule: guidance <= 1 means no unconditional pass
        ids = self.tokenizer(negatives + prompts if guided else prompts)
        embeddings = self.backend.run("text_encoder", {"input_ids": ids})
        f = self.sampling.vae_scale_factor
        shape = (len(prompts), self.sampling.latent_channels, h // f, w // f)
        x = rng.standard_normal(shape, dtype=np.float32) * np.float32(sched.init_noise_sigma)

        def predict(model_in, t):
            feeds = {"sample": model_in, "timestep": np.full(len(model_in), t, dtype=np.float32),
                     "encoder_hidden_states": embeddings}
            return self.backend.run("unet", feeds)

        x = denoise(sched, x, rng, predict, w_guidance if guided else None, on_step=on_step)
        latents = (x / np.float32(self.sampling.vae_scaling_factor)).astype(np.float32)
        return self.backend.run("vae_decoder", {"latent_sample": latents})


FAMILY = StableDiffusion()
