"""Precision conversion of exported ONNX models: one converter per precision variant
(gen.runtime.precision names them), each `converter(src, dst)` writing a checked file.

Conversion works from the file path, not an in-memory model: ONNX's in-memory shape inference
cannot handle a model over 2 GB (SD 1.5's UNet is 3.4 GB in fp32), while `infer_shapes_path` can.
"""

from __future__ import annotations

from pathlib import Path

from gen.errors import GenError
from gen.export.onnx_io import save_onnx

# normalisation ops overflow in half precision; Resize's scales input must stay float32
FP16_KEEP_FP32_OPS = ["GroupNormalization", "InstanceNormalization", "Resize"]


def convert_fp16(src: Path, dst: Path) -> None:
    """fp32 -> fp16 weights and compute, keeping fp32 inputs/outputs so callers need not change.

    Uses ONNX Runtime's own converter (onnxruntime.transformers.float16), which knows which ops ORT
    runs in fp16. Given the path, it runs shape inference through a file (any size) and loads the
    external weights beside it.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        half = convert_float_to_float16(str(src), keep_io_types=True, op_block_list=FP16_KEEP_FP32_OPS)
        sort_topologically(half.graph)  # the converter appends its input casts after their consumers
        save_onnx(half, dst)
        onnx.checker.check_model(str(dst), full_check=True)
    except (ValueError, onnx.checker.ValidationError) as e:
        raise GenError(f"fp16 conversion of {src.name} failed: {str(e).splitlines()[0]}") from None


_CONVERTERS = {"fp16": convert_fp16}


def converter(precision: str):
    if precision not in _CONVERTERS:
        raise GenError(f"no converter for precision {precision!r}; export offers {', '.join(_CONVERTERS)}")
    return _CONVERTERS[precision]


def sort_topologically(graph) -> None:
    """Reorder graph.node so every node follows the producers of its inputs (ONNX requires it).

    Nodes are tracked by position, not compared as protobuf messages: message equality compares
    every field (slow on large graphs, and two identical nodes would be confused)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    nodes = list(graph.node)
    pending, order = list(range(len(nodes))), []
    while pending:
        ready = [i for i in pending if all(x in available for x in nodes[i].input)]
        if not ready:
            raise ValueError("graph has a cycle or an input nobody produces")
        for i in ready:
            order.append(i)
            available.update(nodes[i].output)
        done = set(ready)
        pending = [i for i in pending if i not in done]
    ordered = [nodes[i] for i in order]
    del graph.node[:]
    graph.node.extend(ordered)
