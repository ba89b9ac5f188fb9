"""Helpers every family's nets share: state-dict slicing, the conditional rule, I/O specs."""

from __future__ import annotations


def sub_state(tensors: dict, prefix: str) -> dict:
    """The entries of a flat state dict under `prefix.`, with the prefix removed ("": all of them)."""
    if not prefix:
        return dict(tensors)
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def is_conditional(config: dict) -> bool:
    return bool(config.get("conditional")) and config.get("num_classes", 0) > 1


def io_spec(name: str, dtype: str, shape: list, range: list | None = None) -> dict:
    """One input or output; `range` [low, high) bounds what an integer input may hold."""
    spec = {"name": name, "dtype": dtype, "shape": shape}
    if range is not None:
        spec["range"] = range
    return spec


def image_spec(config: dict, name: str = "images") -> dict:
    """[batch, C, H, W] float32 at a run's image size."""
    size = config["image_size"]
    return io_spec(name, "float32", ["batch", config["channels"], size, size])
