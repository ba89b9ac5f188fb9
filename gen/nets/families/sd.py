"""Stable Diffusion nets: the callables a `sd` bundle exports and eager runs.

Names and layouts follow optimum's ONNX Stable Diffusion export, so the same files also load in
optimum's ORT pipeline (benchmarks/ compares the two on identical ONNX):

    text_encoder  input_ids[batch, 77] int64          -> last_hidden_state[batch, 77, hidden]
    unet          sample, timestep[batch], encoder_hidden_states -> out_sample
    vae_decoder   latent_sample (already divided by the VAE scaling factor) -> sample in [-1, 1]
    vae_encoder   sample in [-1, 1] -> latent_sample (the posterior mean, unscaled)
    unet_lora     with LoRA slots (gen export --lora-slots RANK): unet's inputs plus per-row adapter
                  factors lora_down_<k>, lora_up_<k> (gen.nets.lora_slots)
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from torch import nn

from gen.nets.components import io_spec
from gen.nets.families import Nets

PARTS = ("text_encoder", "unet", "vae")  # pipeline attributes, saved under weights/ in folders of the same name


class TextEncoder(nn.Module):
    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        return self.text_encoder(input_ids, return_dict=False)[0]


class UNet(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class VaeDecoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample, return_dict=False)[0]


class VaeEncoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        return self.vae.encode(sample, return_dict=False)[0].mode()


def components_of(pipe, lora_rank: int = 0) -> dict[str, nn.Module]:
    """`lora_rank` > 0 adds unet_lora, the same UNet's weights with adapter slots of that rank."""
    comps = {"text_encoder": TextEncoder(pipe.text_encoder), "unet": UNet(pipe.unet),
             "vae_decoder": VaeDecoder(pipe.vae), "vae_encoder": VaeEncoder(pipe.vae)}
    if lora_rank:
        from gen.nets.lora_slots import SlotUNet

        comps["unet_lora"] = SlotUNet(pipe.unet, lora_rank)
    for m in comps.values():
        m.eval().requires_grad_(False)
    return comps


def load_components(weights_dir: Path, lora_rank: int = 0) -> dict[str, nn.Module]:
    """The components from a bundle's weights/ (diffusers/transformers folders, safetensors only)."""
    from gen.hf import quiet_hf_logs

    quiet_hf_logs()
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    classes = dict(zip(PARTS, (CLIPTextModel, UNet2DConditionModel, AutoencoderKL)))
    # what components_of reads, without building a whole pipeline
    parts = SimpleNamespace(**{p: cls.from_pretrained(weights_dir / p, use_safetensors=True) for p, cls in classes.items()})
    return components_of(parts, lora_rank)


def save_weights(pipe, weights_dir: Path) -> None:
    for part in PARTS:
        getattr(pipe, part).save_pretrained(weights_dir / part, safe_serialization=True)


def signatures(pipe, lora_rank: int = 0) -> dict[str, dict]:
    hidden = pipe.text_encoder.config.hidden_size
    vocab = int(pipe.text_encoder.config.vocab_size)
    length = pipe.tokenizer.model_max_length
    def latent(channels):
        return ["batch", int(channels), "latent_height", "latent_width"]

    lat = pipe.vae.config.latent_channels
    image = ["batch", 3, "height", "width"]
    text = ["batch", length, hidden]
    sigs = {
        "text_encoder": {"inputs": [io_spec("input_ids", "int64", ["batch", length], [0, vocab])],
                         "outputs": [io_spec("last_hidden_state", "float32", text)]},
        # an inpainting UNet reads 9 channels (latents, mask, masked-image latents) and writes 4
        "unet": {"inputs": [io_spec("sample", "float32", latent(pipe.unet.config.in_channels)),
                            io_spec("timestep", "float32", ["batch"]), io_spec("encoder_hidden_states", "float32", text)],
                 "outputs": [io_spec("out_sample", "float32", latent(pipe.unet.config.out_channels))]},
        "vae_decoder": {"inputs": [io_spec("latent_sample", "float32", latent(lat))],
                        "outputs": [io_spec("sample", "float32", image)]},
        "vae_encoder": {"inputs": [io_spec("sample", "float32", image)],
                        "outputs": [io_spec("latent_sample", "float32", latent(lat))]},
    }
    if lora_rank:
        from gen.nets.lora_slots import factor_names, slot_layers, slot_shapes

        layers = slot_layers(pipe.unet)
        shapes = [s for pair in slot_shapes(pipe.unet, layers, lora_rank) for s in pair]
        slots = [io_spec(n, "float32", s) for n, s in zip(factor_names(len(layers)), shapes)]
        sigs["unet_lora"] = {"inputs": sigs["unet"]["inputs"] + slots, "outputs": sigs["unet"]["outputs"]}
    return sigs


class SdNets(Nets):
    name = "sd"

    def load(self, bundle):
        components = load_components(bundle.resolve(bundle.manifest.weights["diffusers"]), bundle.sampling.lora_rank)
        if "tiny_decoder" in bundle.manifest.weights:  # gen export BUNDLE --tiny-decoder RUN
            components["tiny_decoder"] = load_tiny_decoder(bundle.resolve(bundle.manifest.weights["tiny_decoder"]))
        return components


def load_tiny_decoder(folder: Path):
    """The distilled tiny decoder (gen.nets.tiny_decoder) from its folder in a bundle."""
    from gen.fileio import load_safetensors, read_json
    from gen.nets.tiny_decoder import build

    net = build(read_json(folder / "config.json", "tiny decoder config"))
    net.load_state_dict(load_safetensors(folder / "weights.safetensors")[0])
    return net.eval().requires_grad_(False)


NETS = SdNets()
