"""LoRA adapters on a Stable Diffusion UNet (peft), in diffusers' file format.

Shared by LoRA training (gen.trainkit.sd.lora) and the recipes' seeded demo LoRA, so neither imports
the other.
"""

from __future__ import annotations

from pathlib import Path

TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]


def add_lora(unet, rank: int) -> list:
    """Attach a peft LoRA (alpha = rank, so scale 1) and return its trainable parameters."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TARGET_MODULES))
    return [p for p in unet.parameters() if p.requires_grad]


def save_lora(unet, path: Path) -> None:
    """The UNet's adapter as diffusers-format safetensors, written atomically."""
    import tempfile

    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    from gen.fileio import atomic_path

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    with tempfile.TemporaryDirectory(dir=path.parent) as d, atomic_path(path) as tmp:
        StableDiffusionPipeline.save_lora_weights(d, unet_lora_layers=layers, weight_name=path.name, safe_serialization=True)
        Path(d, path.name).replace(tmp)
