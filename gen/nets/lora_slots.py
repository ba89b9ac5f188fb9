"""A UNet with low-rank adapter slots: the adapter is data (graph inputs), not weights.

Each slot layer (an attention projection, the layers LoRA adapts: gen.nets.lora.TARGET_MODULES)
computes W x + (x D_b) U_b, where D_b [in, rank] and U_b [rank, out] are row b's factors, fed per
call with the batch first (`lora_down_<k>` [batch, in, rank], `lora_up_<k>` [batch, rank, out]).
The host folds the adapter's alpha / rank and the request's lora_scale into U, so a row with no
adapter is all zeros and rows of different requests, with different adapters, concatenate into one
call. The layers are hooked, not replaced: the wrapped UNet is the plain one whenever the slot
module is not the caller, so one set of weights serves both components.
"""

from __future__ import annotations

from torch import nn

from gen.nets.lora import TARGET_MODULES


def slot_layers(unet) -> list[str]:
    """The UNet's layers a slot adapts, in module order (diffusers' names, e.g.
    down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q)."""
    return [name for name, m in unet.named_modules()
            if isinstance(m, nn.Linear) and any(name == t or name.endswith(f".{t}") for t in TARGET_MODULES)]


def factor_names(count: int) -> list[str]:
    """The slot inputs, layer k's down then up factor."""
    return [f"lora_{kind}_{k}" for k in range(count) for kind in ("down", "up")]


def slot_shapes(unet, layers: list[str], rank: int) -> list[tuple[list, list]]:
    """(down, up) shapes per layer, batch first."""
    modules = dict(unet.named_modules())
    return [(["batch", modules[n].in_features, rank], ["batch", rank, modules[n].out_features]) for n in layers]


class SlotUNet(nn.Module):
    """forward(sample, timestep, encoder_hidden_states, lora_down_0, lora_up_0, ...) -> out_sample."""

    def __init__(self, unet, rank: int):
        super().__init__()
        self.unet, self.rank = unet, rank
        self.layers = slot_layers(unet)
        self.names = factor_names(len(self.layers))
        self._factors = None  # per forward: [(down, up)] by layer
        modules = dict(unet.named_modules())
        for k, name in enumerate(self.layers):
            modules[name].register_forward_hook(self._hook(k))

    def _hook(self, k: int):
        def add_low_rank(module, inputs, output):
            if self._factors is None:  # the plain UNet's call
                return None
            down, up = self._factors[k]
            return output + (inputs[0] @ down) @ up
        return add_low_rank

    def forward(self, sample, timestep, encoder_hidden_states, *factors, **named):
        factors = factors or tuple(named[n] for n in self.names)
        self._factors = list(zip(factors[0::2], factors[1::2]))
        try:
            return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]
        finally:
            self._factors = None
