"""Flatten modules and optimizers into one safetensors dict (and back) for exact resumption."""

from __future__ import annotations

import json

import torch

from gen.errors import GenError
from gen.nets.components import sub_state


def pack(modules: dict, optimizers: dict, step: int) -> tuple[dict, dict[str, str]]:
    tensors, meta = {}, {"step": str(step)}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.clone()
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        for idx, state in sd["state"].items():
            for key, value in state.items():
                if not torch.is_tensor(value):
                    value = torch.tensor(value)
                tensors[f"optim.{name}.{idx}.{key}"] = value.clone()
        meta[f"optim.{name}.param_groups"] = json.dumps(sd["param_groups"])
    return tensors, meta


def unpack(tensors: dict, meta: dict[str, str], modules: dict, optimizers: dict, source: str) -> int:
    """Load what `pack` wrote into freshly built modules/optimizers; returns the step."""
    try:
        for name, module in modules.items():
            module.load_state_dict(sub_state(tensors, f"module.{name}"), strict=True)
        for name, opt in optimizers.items():
            state: dict = {}
            for k, v in sub_state(tensors, f"optim.{name}").items():
                idx, key = k.split(".", 1)
                state.setdefault(int(idx), {})[key] = v
            opt.load_state_dict({"state": state, "param_groups": json.loads(meta[f"optim.{name}.param_groups"])})
        return int(meta["step"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise GenError(f"{source} does not match this run's networks: {str(e).splitlines()[0]}") from None
