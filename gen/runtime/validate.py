"""One place that checks a component call's inputs against the bundle's signature.

Backends differ in how they fail on a bad input (ORT: a C++ message; torch: a shape error deep in
a conv), so every backend's `run` goes through `check_feeds` first and fails the same clear way.
"""

from __future__ import annotations

import numpy as np

from gen.errors import GenError


def check_feeds(component: str, signature: dict, feeds: dict[str, np.ndarray]) -> None:
    expected = {s["name"]: s for s in signature["inputs"]}
    missing = sorted(set(expected) - set(feeds))
    extra = sorted(set(feeds) - set(expected))
    if missing or extra:
        raise GenError(f"{component}: missing inputs {missing}, unexpected inputs {extra}; expects {sorted(expected)}")
    batch = None
    for name, spec in expected.items():
        a = feeds[name]
        if not isinstance(a, np.ndarray):
            raise GenError(f"{component}.{name}: expected a numpy array, got {type(a).__name__}")
        if a.dtype != np.dtype(spec["dtype"]):
            raise GenError(f"{component}.{name}: dtype {a.dtype}, expected {spec['dtype']}")
        if len(a.shape) != len(spec["shape"]):
            raise GenError(f"{component}.{name}: shape {list(a.shape)}, expected {spec['shape']}")
        for got, want in zip(a.shape, spec["shape"]):
            if want == "batch":
                batch = got if batch is None else batch
                if got != batch or got < 1:
                    raise GenError(f"{component}.{name}: batch size {got} does not match the other inputs ({batch})")
            elif isinstance(want, int) and got != want:
                raise GenError(f"{component}.{name}: shape {list(a.shape)}, expected {spec['shape']}")
        if a.size and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise GenError(f"{component}.{name}: holds NaN or infinite values")
        bounds = spec.get("range")
        if bounds and a.size and (a.min() < bounds[0] or a.max() >= bounds[1]):
            bad = a.min() if a.min() < bounds[0] else a.max()
            raise GenError(f"{component}.{name}: value {bad} is outside [{bounds[0]:g}, {bounds[1]:g})")


def example_feeds(signature: dict, batch: int, seed: int = 0, num_classes: int = 10,
                  timesteps: int = 1000, dims: dict | None = None) -> dict[str, np.ndarray]:
    """Random inputs that satisfy `signature` (export tracing, parity checks, benchmarks).

    `dims` sizes the named dimensions other than "batch" (e.g. latent_height); integer inputs are
    drawn from [0, num_classes) (class labels, token ids), timesteps from [0, timesteps).
    """
    rng = np.random.default_rng(seed)
    sizes = {**(dims or {}), "batch": batch}
    out = {}
    for spec in signature["inputs"]:
        missing = [d for d in spec["shape"] if isinstance(d, str) and d not in sizes]
        if missing:
            raise ValueError(f"example_feeds: no size given for dimension {missing[0]!r} of {spec['name']}")
        shape = [sizes[d] if isinstance(d, str) else d for d in spec["shape"]]
        dtype = np.dtype(spec["dtype"])
        if spec["name"] == "timestep":
            out[spec["name"]] = rng.integers(0, timesteps, shape).astype(dtype)
        elif dtype.kind == "i":
            high = int(spec["range"][1]) if spec.get("range") else max(num_classes, 1)
            out[spec["name"]] = rng.integers(0, min(high, max(num_classes, 1)), shape).astype(dtype)
        else:
            out[spec["name"]] = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
    return out
