"""`gen export --model sd|sd-lora|tiny-sd`: a Stable Diffusion pipeline -> a parity-checked bundle.

The recipe gives a diffusers pipeline with any LoRA already fused into the UNet; its text encoder,
UNet and VAE (decoder and encoder) are exported one by one through the same checked path as every
other family (gen.export.onnx_io), and the tokenizer and scheduler config are copied so the bundle
samples with no torch and no transformers. The UNet is checked at a non-square latent size as well,
so a resolution baked into the graph is caught at export time.

A LoRA that gen.recipes.lcm recognises as an LCM-LoRA changes the bundle's defaults only: the lcm
scheduler (with the LoRA's original_inference_steps and timestep_scaling) at 4 steps, guidance 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.export.defaults import DEFAULT_OPSET, DEFAULT_TOLERANCE
from gen.export.onnx_io import (check_opset, export_precisions, precisions_onto, record_weights, refuse_existing,
                                staged_bundle)
from gen.export.variants import check_images, export_checked
from gen.recipes.lcm import KEYS as LCM_KEYS
from gen.runtime.manifest import MANIFEST, write_manifest
from gen.runtime.precision import check_precision
from gen.versions import versions

TOKENIZER_DIR = "tokenizer"
SCHEDULER_KEYS = ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type", "clip_sample",
                  "clip_sample_range", "steps_offset", "set_alpha_to_one", "timestep_spacing", "trained_betas")
DEFAULTS = {"scheduler": "dpm++", "steps": 20, "guidance": 7.5}
# an LCM-LoRA makes the base a consistency model: LCM multistep sampling, guidance folded in at distillation
MAX_SLOT_RANK = 256  # adapter slots: each row feeds rank x (in + out) floats per adapted layer
LCM_DEFAULTS = {"scheduler": "lcm", "steps": 4, "guidance": 1.0}


def export_sd(model: str, out: str, base: str | None = None, lora: str | None = None, lora_scale: float = 1.0,
              precisions=("fp32",), opset: int = DEFAULT_OPSET, force: bool = False,
              tolerance: float = DEFAULT_TOLERANCE, image_check: bool = True, progress=print, int8=None,
              embeddings: tuple[str, ...] = (), drop: tuple[str, ...] = (), lora_slots: int = 0) -> Path:
    """`embeddings`: textual inversions (files or `gen train textual-inversion` runs) folded into the
    text encoder's embedding table and the tokenizer, so a host with gen[runtime] reads the new tokens.
    With --force the replaced bundle's other precisions are kept unless in `drop`. `lora_slots` > 0
    adds unet_lora, the UNet with adapter slots of that rank (gen.nets.lora_slots; adapters are
    then added with `gen lora add`, no re-export)."""
    from gen.nets.families.sd import components_of, save_weights, signatures
    from gen.recipes.registry import load_pipeline
    from gen.runtime.validate import example_feeds

    check_opset(opset)
    check_lora_slots(lora_slots)
    precisions = export_precisions(precisions, int8)
    out = Path(out)
    sources = (base if base and Path(base).exists() else None, lora, *embeddings)
    precisions, force, int8 = precisions_onto(out, precisions, drop, force, int8=int8, progress=progress)
    refuse_existing(out, force, sources)
    resolved = load_pipeline(model, base, lora, lora_scale, progress=progress, embeddings=tuple(embeddings))
    pipe = resolved.pipe
    sigs = signatures(pipe, lora_slots)
    vae_scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    latent = int(pipe.unet.config.sample_size)
    unet_multiple = 2 ** (len(pipe.unet.config.block_out_channels) - 1)

    def example_for(sig):
        def example(batch, seed):
            # trace square at the native size; check parity one UNet stride wider (dynamic H and W)
            w = latent + (unet_multiple if seed else 0)
            dims = {"latent_height": latent, "latent_width": w, "height": latent * vae_scale, "width": w * vae_scale}
            feeds = example_feeds(sig, batch, seed=seed, num_classes=pipe.text_encoder.config.vocab_size,
                                  timesteps=pipe.scheduler.config.num_train_timesteps, dims=dims)
            # adapter factors of a trained LoRA's size, not unit normals that swamp the base layers
            return {k: v * np.float32(0.05) if k.startswith("lora_") else v for k, v in feeds.items()}
        return example

    with staged_bundle(out, force, sources) as tmp:
        entries, parities = {}, {}
        for name, module in components_of(pipe, lora_slots).items():
            entries[name], parities[name] = export_checked(name, module, sigs[name], tmp, opset, example_for(sigs[name]),
                                                           tolerance, precisions, progress)
        progress("copying tokenizer, scheduler config and eager weights ...")
        pipe.tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        if not (tmp / TOKENIZER_DIR / "tokenizer.json").is_file():
            raise GenError("the base's tokenizer could not be saved as tokenizer.json (a fast tokenizer is needed)")
        save_weights(pipe, tmp / "weights")
        manifest = _manifest(pipe, resolved, entries, parities, precisions, opset, vae_scale, unet_multiple, lora_slots)
        record_weights(tmp, manifest)
        write_manifest(tmp / MANIFEST, manifest)
        if image_check or any(check_precision(p).calibrated for p in precisions):  # int8 is made by its gate
            check_images(tmp, tmp / MANIFEST, manifest, precisions, progress, int8=int8, prompt="a red house by a lake",
                         n=2, seed=0, steps=10)
    return out


def scheduler_config(pipe) -> dict:
    """The base's noise schedule as DDIM reads it (diffusers fills in DDIM's defaults for keys the
    base's own scheduler class lacks), which is what gen's numpy schedulers take."""
    from diffusers import DDIMScheduler

    cfg = DDIMScheduler.from_config(pipe.scheduler.config).config
    own = {k: pipe.scheduler.config[k] for k in LCM_KEYS if k in pipe.scheduler.config}  # an LCM-distilled base's
    return {**{k: cfg[k] for k in SCHEDULER_KEYS if k in cfg}, **own}


def check_lora_slots(rank) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= MAX_SLOT_RANK:
        raise GenError(f"--lora-slots must be an integer from 0 (none) to {MAX_SLOT_RANK}, got {rank!r}")


def _manifest(pipe, resolved, components, parity, precisions, opset, vae_scale, unet_multiple, lora_slots=0):
    from gen.nets.lora_slots import slot_layers
    from gen.runtime.families.sd import SdSampling
    from gen.runtime.manifest import Component, Conditioning, Image, Manifest, Text, parse

    size = int(pipe.unet.config.sample_size) * vae_scale
    lora, schedule, defaults = None, scheduler_config(pipe), DEFAULTS
    if resolved.lora:
        lora = {"path": resolved.lora, "scale": resolved.lora_scale, "sha256": resolved.lora_sha256}
    if resolved.lcm:
        lora["kind"] = "lcm-lora"
        lora["lcm"] = resolved.lcm
        schedule = {**schedule, **{k: resolved.lcm[k] for k in LCM_KEYS}}
        defaults = LCM_DEFAULTS
    return Manifest(
        family="sd",
        components={k: parse(Component, v, f"components.{k}") for k, v in components.items()},
        sampling=SdSampling(scheduler_config=schedule, default_scheduler=defaults["scheduler"],
                            default_steps=defaults["steps"], guidance=defaults["guidance"],
                            vae_scaling_factor=float(pipe.vae.config.scaling_factor), vae_scale_factor=vae_scale,
                            latent_channels=int(pipe.vae.config.latent_channels), unet_multiple=unet_multiple,
                            inpainting=int(pipe.unet.config.in_channels) == 2 * int(pipe.vae.config.latent_channels) + 1,
                            lora_rank=lora_slots, lora_layers=slot_layers(pipe.unet) if lora_slots else []),
        text=Text(tokenizer=f"{TOKENIZER_DIR}/tokenizer.json", max_length=int(pipe.tokenizer.model_max_length),
                  pad_id=int(pipe.tokenizer.pad_token_id), hidden_size=int(pipe.text_encoder.config.hidden_size),
                  expand={e["tokens"][0]: " ".join(e["tokens"]) for e in resolved.embeddings or () if len(e["tokens"]) > 1}),
        conditioning=Conditioning(num_classes=0, class_names=[], text=True),
        image=Image(channels=3, height=size, width=size),
        precision="fp16" if "fp16" in precisions else "fp32",
        parity=parity,
        weights={"diffusers": "weights"},
        source={"base": resolved.base, "lora": lora, "notes": resolved.notes,
                **({"textual_inversion": resolved.embeddings} if resolved.embeddings else {})},
        export={"opset": opset},
        versions=versions(("gen", "torch", "diffusers", "transformers", "peft", "onnx", "onnxruntime")),
    )
