"""The diffusion network: diffusers' UNet2DModel, sized for small images by default."""

from __future__ import annotations


def unet_config(image_size: int, channels: int, num_classes: int, widths=(32, 64, 64), attention: bool = False) -> dict:
    """A UNet2DModel config; `num_classes` > 0 adds one extra embedding row, the null label for CFG."""
    n = len(widths)
    down, up = ["DownBlock2D"] * n, ["UpBlock2D"] * n
    if attention:
        down[n // 2], up[n - 1 - n // 2] = "AttnDownBlock2D", "AttnUpBlock2D"
    return {
        "sample_size": image_size,
        "in_channels": channels,
        "out_channels": channels,
        "block_out_channels": list(widths),
        "layers_per_block": 1,
        "down_block_types": down,
        "up_block_types": up,
        "norm_num_groups": min(16, widths[0]),
        "add_attention": attention,
        "num_class_embeds": num_classes + 1 if num_classes else None,
    }


def build_unet(config: dict):
    from diffusers import UNet2DModel

    return UNet2DModel(**config)
