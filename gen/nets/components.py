"""Inference components: the exact callables a bundle exports to ONNX and the eager backend runs.

One definition serves both, so eager and ONNX Runtime cannot drift apart. Each component takes
and returns plain tensors with the names in `signatures()`:

    gan   generator(z[, labels]) -> images
    vae   decoder(z) -> images
    ddpm  denoiser(sample, timestep[, class_labels]) -> model_output (epsilon or v)
"""

from __future__ import annotations

import torch
from torch import nn


def sub_state(tensors: dict, prefix: str) -> dict:
    """The entries of a flat state dict under `prefix.`, with the prefix removed."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def is_conditional(config: dict) -> bool:
    return bool(config.get("conditional")) and config.get("num_classes", 0) > 1


class GeneratorComponent(nn.Module):
    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z, labels=None):
        return self.generator(z, labels)


class DecoderComponent(nn.Module):
    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z)


class DenoiserComponent(nn.Module):
    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, class_labels=None):
        return self.unet(sample, timestep, class_labels=class_labels).sample


def build_components(config: dict, tensors: dict | None = None) -> dict[str, nn.Module]:
    """Rebuild a run's inference nets from its config, loading sampling weights when given."""
    family, c = config["family"], config
    k = c["num_classes"] if is_conditional(c) else 0
    if family == "gan":
        from gen.nets.gan import Generator

        net, prefix = Generator(c["image_size"], c["channels"], c["z_dim"], c["width"], k), "generator"
        comp = {"generator": GeneratorComponent(net)}
    elif family == "vae":
        from gen.nets.vae import VAE

        net, prefix = VAE(c["image_size"], c["channels"], c["latent_dim"], c["width"]), "vae"
        comp = {"decoder": DecoderComponent(net)}
    elif family == "ddpm":
        from gen.nets.unet import build_unet, unet_config

        net = build_unet(unet_config(c["image_size"], c["channels"], k, c["widths"], c["attention"]))
        prefix, comp = "unet", {"denoiser": DenoiserComponent(net)}
    else:
        raise ValueError(f"unknown model family {family!r}")
    if tensors is not None:
        net.load_state_dict(sub_state(tensors, prefix))
    for m in comp.values():
        m.eval().requires_grad_(False)
    return comp


def signatures(config: dict) -> dict[str, dict]:
    """Input/output names, dtypes and shapes per component; 'batch' is the dynamic axis."""
    c, size = config, config["image_size"]
    image = ["batch", c["channels"], size, size]
    cond = is_conditional(c)
    if c["family"] == "gan":
        inputs = [io_spec("z", "float32", ["batch", c["z_dim"]])] + ([io_spec("labels", "int64", ["batch"])] if cond else [])
        return {"generator": {"inputs": inputs, "outputs": [io_spec("images", "float32", image)]}}
    if c["family"] == "vae":
        return {"decoder": {"inputs": [io_spec("z", "float32", ["batch", c["latent_dim"]])], "outputs": [io_spec("images", "float32", image)]}}
    inputs = [io_spec("sample", "float32", image), io_spec("timestep", "int64", ["batch"])]
    if cond:
        inputs.append(io_spec("class_labels", "int64", ["batch"]))
    return {"denoiser": {"inputs": inputs, "outputs": [io_spec("model_output", "float32", image)]}}


def io_spec(name: str, dtype: str, shape: list) -> dict:
    return {"name": name, "dtype": dtype, "shape": shape}
