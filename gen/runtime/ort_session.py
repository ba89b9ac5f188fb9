"""One way to open an ONNX Runtime session, so export checks, backends and served models agree."""

from __future__ import annotations

import os


def ort_session(path, threads: int | None = None, providers: list[str] | None = None):
    """A sequential session with full graph optimisation and `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])
