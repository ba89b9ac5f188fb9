"""Precisions as named variants of a component file, not a bool threaded through signatures.

A bundle's component has one ONNX file per precision it was exported at (`files: {"fp32": ...,
"fp16": ...}`); a backend runs the variant it is asked for and refuses one it cannot run. Adding a
precision is one entry here plus its converter in gen.export.

fp16 is a per-file conversion. The int8 variants are calibrated: they are made from the whole staged
bundle (its components' real inputs, recorded while it samples) and gated on whole sampling runs
(gen.export.int8). A component that int8 does not speed up keeps its float file under the int8 name,
so every int8 bundle runs as one precision.

bf16 has no file of its own: it is how OpenVINO computes the fp32 file on CPUs that have bfloat16
instructions (its `INFERENCE_PRECISION_HINT`), so `reads` names the variant it runs; int8-bf16 likewise
runs the int8 file with its float nodes in bfloat16.
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
    calibrated: bool = False  # made from recorded sampling runs of the bundle, not file by file
    reads: str | None = None  # a compute precision that runs another variant's file (bf16 runs fp32's)

    @property
    def file(self) -> str:
        """The component file variant this precision runs."""
        return self.reads or self.name


_PRECISIONS = {p.name: p for p in (
    Precision("fp32", "", "the default export", "float32"),
    Precision("fp16", ".fp16", "--fp16", "float16"),
    # QDQ, u8 activations / s8 per-channel weights: what ORT's CPU kernels (VNNI, AMX) run fastest
    Precision("int8", ".int8", "--int8", "int8", calibrated=True),
    # s8 symmetric activations, zero points 0: TensorRT's explicit-quantization form (ORT runs it too)
    Precision("int8-trt", ".int8-trt", "--int8 --int8-trt", "int8", calibrated=True),
    # OpenVINO IR quantized by NNCF (<component>.int8-ov.xml + .bin), for the openvino backend
    Precision("int8-ov", ".int8-ov", "--int8 --int8-openvino", "int8", calibrated=True),
    # OpenVINO on CPUs with native bf16 (AVX-512 BF16, AMX): the fp32 file, computed in bfloat16
    Precision("bf16", "", "the default export", "bfloat16", reads="fp32"),
    # the same host's fastest mix: the int8 file's quantized nodes in int8, its float nodes in bfloat16 (the
    # layers int8's gate kept float, attention, norms), where plain int8 computes those in f32
    Precision("int8-bf16", "", "--int8", "int8", calibrated=True, reads="int8"),
)}
PRECISIONS = tuple(_PRECISIONS)


def check_precision(name: str) -> Precision:
    if name not in _PRECISIONS:
        raise GenError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    return _PRECISIONS[name]
