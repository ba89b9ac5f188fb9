"""Stable Diffusion bundles (text-to-image): prompts -> text embeddings -> latent denoising loop ->
VAE decode, as diffusers' StableDiffusionPipeline does it, on any backend; with `image=`, img2img
(StableDiffusionImg2ImgPipeline) and with `image=` and `mask=`, inpainting by latent blending
(StableDiffusionInpaintPipeline with a 4-channel UNet; with an inpainting base's 9-channel UNet, the
mask and masked-image latents fed beside the sample), all through the bundle's `vae_encoder`.

Classifier-free guidance runs unconditional and conditional halves in one UNet call (negative
prompt first, as diffusers orders them), and the text encoder encodes both halves in one call too.
Initial latents are drawn on the host with numpy, so a seed gives the same images on every backend;
passing the same latents to diffusers (`latents=`) gives diffusers' images. For img2img and
inpainting the image's latents are the VAE posterior's mean (diffusers samples it, with a standard
deviation SD's VAE keeps near zero), so the same image gives the same latents on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gen.errors import GenError
from gen.runtime.denoise import DenoiserCall, denoise
from gen.runtime.families import Limits
from gen.runtime.families.diffusion import DiffusionFamily, DiffusionSampling
from gen.runtime.image_input import to_channels
from gen.runtime.validate import example_feeds

BENCH_PROMPT = "a photograph of an astronaut riding a horse"
# generate(decoder=...): the bundle's VAE decoder, or the tiny one distilled from it (gen distill decoder)
DECODERS = {"full": "vae_decoder", "tiny": "tiny_decoder"}
LORA_ARGUMENTS = ("lora", "lora_scale")  # taken where the bundle has LoRA slots (gen.runtime.loras)
NO_TINY = ("decoder='tiny' needs a bundle with a tiny decoder; this one has none: distil one with `gen distill decoder "
           "BUNDLE --out RUN` and add it with `gen export BUNDLE --tiny-decoder RUN` (or use decoder='full')")


@dataclass
class SdSampling(DiffusionSampling):
    vae_scaling_factor: float = 0.18215  # latents are divided by it before the VAE decoder
    vae_scale_factor: int = 8  # pixels per latent
    latent_channels: int = 4
    unet_multiple: int = 1  # the UNet's own downsampling: latent sizes must be multiples of it
    # an inpainting base (e.g. stable-diffusion-inpainting): its UNet reads 2 x latent_channels + 1
    # channels (latents, mask, masked-image latents), so every call needs image= and mask=
    inpainting: bool = False
    # LoRA slots (gen export --lora-slots RANK): the unet_lora component's rank and the layers it adapts
    lora_rank: int = 0
    lora_layers: list[str] = field(default_factory=list)
    # the decoder a call uses when it names none: "tiny" where `gen optimize` chose the distilled one
    default_decoder: str = "full"


def decoder_of(args: dict, sampling) -> str:
    """The decoder a call asked for, else the bundle's default."""
    return args.get("decoder") or sampling.default_decoder


class StableDiffusion(DiffusionFamily):
    name = "sd"
    components = ("text_encoder", "unet", "vae_decoder")
    Sampling = SdSampling
    takes = ("prompt", "negative_prompt", *DiffusionFamily.takes, "height", "width", "image", "mask", "strength", "decoder",
             *LORA_ARGUMENTS)
    required = {"prompt": "this is a text-to-image bundle: pass a prompt, e.g. generate(\"a red house\")"}
    refusals = {"labels": "labels apply to class-conditional bundles; this one is conditioned on a prompt"}
    variable_size = True
    # a UNet call holds 2 x images latents (guidance) and self-attention grows with the pixel count
    # squared: 16 images at up to 4x the native pixels (1024 x 1024 for SD 1.5) per call
    limits = Limits(n=16, steps=500)

    def example_for(self, bundle) -> str:
        """A prompt with the bundle's first learned token (textual inversion), and an inpainting
        model's image and mask."""
        tokens = [e["tokens"][0] for e in bundle.manifest.source.get("textual_inversion") or () if e.get("tokens")]
        prompt = f"a photo of {tokens[0]}" if tokens else "a red house"
        if bundle.sampling.inpainting:
            return f'--prompt "{prompt}" --image IN.png --mask MASK.png --out OUT.png'
        return f'--prompt "{prompt}" --n 4 --out grid.png'

    def check_manifest(self, manifest):
        if manifest.text is None:
            raise GenError("lacks 'text' (the tokenizer and its settings) that every sd bundle has")
        return super().check_manifest(manifest)

    def guided(self, bundle):
        return True

    def accepts(self, bundle):
        from gen.runtime.loras import COMPONENT

        return self.takes if COMPONENT in bundle.components else tuple(a for a in self.takes if a not in LORA_ARGUMENTS)

    def argument(self, bundle, name):
        """The demo's select of adapters, read now (one added since shows up)."""
        if name == "lora" and "lora" in self.accepts(bundle):
            from gen.runtime.loras import adapters_of

            return {"choices": adapters_of(bundle).names()}
        return {}

    @staticmethod
    def check_lora(bundle, args):
        """Each adapter named is loaded (and checked) now, before any network runs; adapters that are
        all "" mean none: the plain unet runs, bit-identical to a bundle without slots."""
        loras = args.get("lora")
        if not loras or not any(loras):
            if "lora_scale" in args and loras is None:
                raise GenError("lora_scale applies with lora=: name an adapter as well (gen lora list BUNDLE)",
                               "lora_scale")
            args.pop("lora", None)
            args.pop("lora_scale", None)
            return
        from gen.runtime.loras import adapters_of

        prompts = len(args.get("prompt", [""]))
        if len(loras) not in (1, prompts):
            raise GenError(f"lora: give one adapter, or one per prompt ({prompts}); got {len(loras)}", "lora")
        store = adapters_of(bundle)
        for name in dict.fromkeys(loras):
            if name:
                store.factors(name)

    def check(self, bundle, args):
        super().check(bundle, args)
        decoder = decoder_of(args, bundle.sampling)
        if decoder not in DECODERS:
            raise GenError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}", "decoder")
        if DECODERS[decoder] not in bundle.components:
            raise GenError(NO_TINY, "decoder")
        image, height, width = args.get("image"), args.get("height"), args.get("width")
        if bundle.sampling.inpainting and (image is None or "mask" not in args):
            raise GenError("this is an inpainting model (its UNet reads the mask and the masked image): pass image= "
                           "and mask= (--image and --mask; white is repainted)")
        if image is None:
            given = [k for k in ("mask", "strength") if k in args]
            if given:
                raise GenError(f"{given[0]} applies to image-to-image sampling: pass an image as well")
        else:
            image = args["image"] = to_channels(image, bundle.image.channels)
            self.check_image(bundle, args, image)
            if height is None and width is None:  # the image's own size, which must suit the model
                try:
                    self.size(bundle, image.shape[1], image.shape[2])
                except GenError as e:
                    raise GenError(f"image is {image.shape[2]}x{image.shape[1]}: {e}; pass height= and width= "
                                   "to resize it") from None
                height, width = image.shape[1], image.shape[2]
        args["height"], args["width"] = self.size(bundle, height, width)
        self.check_lora(bundle, args)

    @staticmethod
    def check_image(bundle, args, image):
        """Count and the mask's size; resizing waits for the routine (after the limits)."""
        prompts = len(args.get("prompt", [""]))
        if len(image) not in (1, prompts):
            raise GenError(f"image: give one image, or one per prompt ({prompts}); got {len(image)}")
        mask = args.get("mask")
        if mask is not None:
            if mask.shape[1:3] != image.shape[1:3]:
                raise GenError(f"mask is {mask.shape[2]}x{mask.shape[1]} but the image is "
                               f"{image.shape[2]}x{image.shape[1]}; give a mask of the image's size")
            if len(mask) not in (1, len(image)):
                raise GenError(f"mask: give one mask, or one per image ({len(image)}); got {len(mask)}")

    @staticmethod
    def size(bundle, height, width) -> tuple[int, int]:
        s = bundle.sampling
        height = bundle.image.height if height is None else height
        width = bundle.image.width if width is None else width
        multiple = max(8, s.vae_scale_factor * s.unet_multiple)
        for name, v in (("height", height), ("width", width)):
            if v < multiple or v % multiple:
                raise GenError(f"{name} must be a positive multiple of {multiple} for this model, got {v!r}", name)
        return int(height), int(width)

    def routine(self, backend):
        return TextToImage(self, backend)

    def previews(self, bundle):
        return DECODERS["tiny"] in bundle.components  # latents become pictures cheaply only through it

    def preview(self, backend, x0):
        """x0 latents through the tiny decoder: a preview at a few % of the full decoder's cost."""
        latents = (np.asarray(x0) / np.float32(backend.bundle.sampling.vae_scaling_factor)).astype(np.float32)
        return backend.run(DECODERS["tiny"], {"latent_sample": latents})

    def example_feeds(self, bundle, component, batch):
        """Token ids up to the pad token, which is inside the vocabulary; the UNet sees the
        CFG-doubled batch in sampling."""
        s, img = bundle.sampling, bundle.image
        dims = {"height": img.height, "width": img.width, "latent_height": img.height // s.vae_scale_factor,
                "latent_width": img.width // s.vae_scale_factor}
        return example_feeds(bundle.signature(component), batch, num_classes=bundle.manifest.text.pad_id + 1, dims=dims)

    def bench_arguments(self, steps, bundle=None):
        args = {"prompt": BENCH_PROMPT, "steps": steps}
        if bundle is not None and bundle.sampling.inpainting:  # a mid-gray image, its centre repainted
            h, w = bundle.image.height, bundle.image.width
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4:3 * h // 4, w // 4:3 * w // 4] = 255
            args.update(image=np.full((h, w, 3), 128, np.uint8), mask=mask)
        return args

    def images_per_request(self, args):
        return args.get("n", 1) * len(args.get("prompt", [""]))


class TextToImage:
    """One Sampler's text-to-image routine: the tokenizer is loaded once, here."""

    def __init__(self, family: StableDiffusion, backend):
        from gen.runtime.prompts import PromptTokenizer

        bundle = backend.bundle
        text = bundle.manifest.text
        self.family, self.backend, self.sampling = family, backend, bundle.sampling
        self.tokenizer = PromptTokenizer(bundle.resolve(text.tokenizer), text.max_length, text.pad_id, text.expand)

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
        noise = rng.standard_normal(shape, dtype=np.float32)
        after_step = condition = None
        if "image" not in args:
            x = noise * np.float32(sched.init_noise_sigma)
        else:
            x, after_step, condition = self.image_start(sched, args, noise, n)

        if condition is not None and guided:  # the UNet sees both guidance halves: their condition once, here
            condition = np.concatenate([condition, condition])

        # an inpainting UNet reads [latents, mask, masked-image latents]
        call = DenoiserCall("unet", np.float32, {"encoder_hidden_states": embeddings}, condition)
        if args.get("lora"):  # the slot UNet, each row's adapter factors fed beside the text (both guidance halves)
            call = DenoiserCall("unet_lora", np.float32, {**call.constant, **self.adapter_feeds(args, n, guided)},
                                condition)
        x = denoise(sched, x, rng, self.backend, call, w_guidance if guided else None, on_step=on_step, after_step=after_step)
        latents = (x / np.float32(self.sampling.vae_scaling_factor)).astype(np.float32)
        return self.backend.run(DECODERS[decoder_of(args, self.sampling)], {"latent_sample": latents})

    def adapter_feeds(self, args, n, guided) -> dict:
        """lora_down_<k> / lora_up_<k> for every row: one adapter for all prompts, or one per prompt."""
        from gen.runtime.loras import adapters_of

        loras = args["lora"] if len(args["lora"]) > 1 else args["lora"] * len(args["prompt"])
        rows = [name for name in loras for _ in range(n)]
        feeds = adapters_of(self.backend.bundle).feeds(rows, args.get("lora_scale", 1.0))
        return {k: np.concatenate([v, v]) for k, v in feeds.items()} if guided else feeds

    def encode(self, image: np.ndarray, shape) -> np.ndarray:
        """Scaled VAE latents of NHWC images in [-1, 1], broadcast to `shape`."""
        latents = self.backend.run("vae_encoder", {"sample": np.ascontiguousarray(image.transpose(0, 3, 1, 2))})
        return np.broadcast_to(latents * np.float32(self.sampling.vae_scaling_factor), shape)

    def image_start(self, sched, args, noise, n):
        """img2img and inpainting: the image's latents noised to where the shortened schedule starts
        (diffusers' get_timesteps and prepare_latents). Inpainting with a 4-channel UNet adds the step
        that puts the kept region back, noised to the next timestep (diffusers' latent blending); an
        inpainting UNet instead reads the mask and the masked image's latents beside the sample
        (returned as the condition), as diffusers' StableDiffusionInpaintPipeline feeds a 9-channel UNet."""
        from gen.runtime.image_input import grayscale, resized

        h, w, f = args["height"], args["width"], self.sampling.vae_scale_factor
        def per_image(a):  # one per prompt given: repeated for its n images (one for all broadcasts)
            return np.repeat(a, n, axis=0) if len(a) > 1 else a

        image = per_image(resized(args["image"], h, w).astype(np.float32) / np.float32(255.0) * 2 - 1)
        latents = self.encode(image, noise.shape)
        mask = args.get("mask")
        strength = args.get("strength", 0.8 if mask is None else 1.0)  # diffusers' defaults for each
        steps = len(sched.timesteps)
        if not sched.start_at(strength):
            raise GenError(f"strength {strength} of {steps} steps runs no step (int(steps x strength) = 0); "
                           "raise strength or steps")
        if mask is not None and strength == 1.0:  # from pure noise, as diffusers does at full strength
            x = noise * np.float32(sched.init_noise_sigma)
        else:
            x = sched.add_noise(latents, noise, sched.timesteps[0])
        if mask is None:
            return x, None, None
        white = resized(grayscale(mask), h, w)[..., 0] >= 128  # as diffusers' mask processor: white is repainted
        repaint = per_image(white[:, ::f, ::f][:, None].astype(np.float32))  # nearest, to the latent grid
        if self.sampling.inpainting:
            masked = self.encode((image * per_image(~white)[..., None]).astype(np.float32), noise.shape)
            batch = (len(noise), 1, *noise.shape[2:])
            return x, None, np.concatenate([np.broadcast_to(repaint, batch), masked], axis=1).astype(np.float32)
        timesteps = sched.timesteps

        def after_step(i, x):
            known = sched.add_noise(latents, noise, timesteps[i + 1]) if i + 1 < len(timesteps) else latents
            return ((1 - repaint) * known + repaint * x).astype(np.float32)

        return x, after_step, None


FAMILY = StableDiffusion()
