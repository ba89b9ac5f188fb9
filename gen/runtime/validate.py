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


def example_feeds(signature: dict, batch: int, seed: int = 0, num_classes: int = 10,
                  timesteps: int = 1000) -> dict[str, np.ndarray]:
    """Random inputs that satisfy `signature` (export tracing, parity checks, benchmarks)."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in signature["inputs"]:
        shape = [batch if d == "batch" else d for d in spec["shape"]]
        if spec["name"] == "timestep":
            out[spec["name"]] = rng.integers(0, timesteps, shape, dtype=np.int64)
        elif spec["dtype"] == "int64":
            out[spec["name"]] = rng.integers(0, max(num_classes, 1), shape, dtype=np.int64)
        else:
            out[spec["name"]] = rng.standard_normal(shape, dtype=np.float32)
    return out
