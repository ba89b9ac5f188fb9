"""The Stable Diffusion sampling routine: prompts -> text embeddings -> latent denoising loop ->
VAE decode, as diffusers' StableDiffusionPipeline does it, on any backend.

Classifier-free guidance runs unconditional and conditional halves in one UNet call (negative
prompt first, as diffusers orders them), and the text encoder encodes both halves in one call too.
Initial latents are drawn on the host with numpy, so a seed gives the same images on every backend;
passing the same latents to diffusers (`latents=`) gives diffusers' images.
"""

from __future__ import annotations

import numpy as np

from gen.errors import GenError
from gen.runtime.denoise import denoise
from gen.runtime.prompts import PromptTokenizer, check_prompts


class TextToImage:
    def __init__(self, backend):
        bundle = backend.bundle
        self.backend, self.sampling, text = backend, bundle.manifest["sampling"], bundle.manifest["text"]
        self.tokenizer = PromptTokenizer(bundle.resolve(text["tokenizer"]), text["max_length"], text["pad_id"])
        self.image = bundle.image

    def size(self, height, width) -> tuple[int, int]:
        height = self.image["height"] if height is None else height
        width = self.image["width"] if width is None else width
        multiple = max(8, self.sampling["vae_scale_factor"] * self.sampling.get("unet_multiple", 1))
        for name, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < multiple or v % multiple:
                raise GenError(f"{name} must be a positive multiple of {multiple} for this model, got {v!r}")
        return int(height), int(width)

    def __call__(self, prompt, negative_prompt, n, rng, sched, guidance, height, width):
        prompts = [p for p in check_prompts(prompt) for _ in range(n)]
        if negative_prompt is None:
            negatives = [""] * len(prompts)
        else:
            negatives = check_prompts(negative_prompt, "negative_prompt")
            if len(negatives) == 1:
                negatives = negatives * len(prompts)
            elif len(negatives) * n != len(prompts):
                raise GenError(f"negative_prompt: give one, or one per prompt ({len(prompts) // n}); got {len(negatives)}")
            else:
                negatives = [p for p in negatives for _ in range(n)]
        h, w = self.size(height, width)
        w_guidance = self.sampling["guidance"] if guidance is None else float(guidance)
        guided = w_guidance > 1.0  # diffusers' rule: guidance <= 1 means no unconditional pass
        batch = len(prompts)
        ids = self.tokenizer(negatives + prompts if guided else prompts)
        embeddings = self.backend.run("text_encoder", {"input_ids": ids})
        f = self.sampling["vae_scale_factor"]
        shape = (batch, self.sampling["latent_channels"], h // f, w // f)
        x = rng.standard_normal(shape, dtype=np.float32) * np.float32(sched.init_noise_sigma)
        def predict(model_in, t):
            feeds = {"sample": model_in, "timestep": np.full(len(model_in), t, dtype=np.float32),
                     "encoder_hidden_states": embeddings}
            return self.backend.run("unet", feeds)

        x = denoise(sched, x, rng, predict, w_guidance if guided else None)
        latents = (x / np.float32(self.sampling["vae_scaling_factor"])).astype(np.float32)
        return self.backend.run("vae_decoder", {"latent_sample": latents})
