"""Where an ONNX Runtime call spends its time, per op type, for each precision of a bundle component.

ONNX Runtime's own profiler (SessionOptions.enable_profiling) over repeated calls of one component
at one batch size, on inputs recorded from the bundle's real sampling run (gen.export.calibration),
so an int8 file can be read against its fp32 twin: which kernels got faster (QLinearConv vs Conv)
and what the quantized graph added (QuantizeLinear, DequantizeLinear, the Transposes of ORT's NHWC
layout for int8 convolutions).

    python benchmarks/ort_profile.py bundles/gan --component generator --batch 64 --precisions fp32,int8 \
        --out benchmarks/results/int8_profile_gan.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np


def profile(path: Path, feeds: dict, calls: int, threads: int) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for _ in range(3):  # warm-up, also profiled: dropped below by counting only the last `calls`
        sess.run(None, feeds)
    for _ in range(calls):
        sess.run(None, feeds)
    events = json.loads(Path(sess.end_profiling()).read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][-calls:]
    start = runs[0]["ts"]
    per_op = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
            per_op[e["args"]["op_name"]] += e["dur"]
    total_us = sum(r["dur"] for r in runs) / calls
    kernels = sum(per_op.values()) / calls
    return {"call_ms": total_us / 1000, "kernels_ms": kernels / 1000,
            "per_op_ms": {k: round(v / calls / 1000, 4) for k, v in per_op.most_common()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--component", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the JSON here")
    args = ap.parse_args()

    from gen.export.calibration import record_calibration
    from gen.runtime.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    calls = record_calibration(Path(args.bundle), images=args.batch, seed=0, progress=lambda m: None)[args.component]
    feeds = calls[len(calls) // 2]  # mid-run for a denoiser; the only call for a generator
    feeds = {k: np.concatenate([v] * (args.batch // len(v) + 1))[: args.batch] for k, v in feeds.items()}
    result = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "cores": os.cpu_count(),
              "batch": args.batch, "threads": args.threads, "precisions": {}}
    for precision in args.precisions.split(","):
        result["precisions"][precision] = profile(bundle.onnx_path(args.component, precision), feeds, args.calls, args.threads)
    base = result["precisions"].get("fp32", {}).get("call_ms")
    for precision, r in result["precisions"].items():
        ratio = f"  {base / r['call_ms']:.2f}x fp32" if base else ""
        print(f"{precision}: {r['call_ms']:.3f} ms per call{ratio}")
        for op, ms in list(r["per_op_ms"].items())[:10]:
            print(f"    {op:28s} {ms:8.3f} ms  {100 * ms / r['kernels_ms']:5.1f}%")
    if args.out:
        from gen.fileio import write_json

        write_json(args.out, result)


if __name__ == "__main__":
    main()
