"""Precisions as named variants of a component file, not a bool threaded through signatures.

A bundle's component has one ONNX file per precision it was exported at (`files: {"fp32": ...,
"fp16": ...}`); a backend runs the variant it is asked for and refuses one it cannot run. Adding a
precision (int8) is one entry here plus its converter in gen.export.
"""

from __future__ import annotations

from dataclasses import dataclass

from gen.errors import GenError


@dataclass(frozen=True)
class Precision:
    name: str
    suffix: str  # component file name: <component><suffix>.onnx
    export_hint: str  # the export flag that writes this variant
    float_dtype: str  # what the network computes in (inputs and outputs stay float32)


_PRECISIONS = {p.name: p for p in (
    Precision("fp32", "", "the default export", "float32"),
    Precision("fp16", ".fp16", "--fp16", "float16"),
)}
PRECISIONS = tuple(_PRECISIONS)


def check_precision(name: str) -> Precision:
    if name not in _PRECISIONS:
        raise GenError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    return _PRECISIONS[name]
