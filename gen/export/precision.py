"""Precision conversion of exported ONNX models."""

from __future__ import annotations

from pathlib import Path


def convert_fp16(src: Path, dst: Path) -> None:
    """fp32 -> fp16 weights and compute, keeping fp32 inputs/outputs so callers need not change.

    Uses ONNX Runtime's own converter (onnxruntime.transformers.float16), which knows which ops ORT
    runs in fp16; normalisation ops that overflow in half precision stay in fp32.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from gen.errors import GenError
    from gen.export.onnx_io import save_onnx

    model = onnx.load(str(src))
    try:
        half = convert_float_to_float16(model, keep_io_types=True, op_block_list=["GroupNormalization", "InstanceNormalization", "Resize"])
        _sort_topologically(half.graph)  # the converter appends its input casts after their consumers
        save_onnx(half, dst)
        onnx.checker.check_model(str(dst), full_check=True)
    except (ValueError, onnx.checker.ValidationError) as e:
        raise GenError(f"fp16 conversion of {src.name} failed: {str(e).splitlines()[0]}") from None


def _sort_topologically(graph) -> None:
    """Reorder graph.node so every node follows the producers of its inputs (ONNX requires it)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("graph has a cycle or an input nobody produces")
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
