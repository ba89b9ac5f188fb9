"""Triton serving vs in-process ORT, side by side in one run; writes benchmarks/results/serving.json.

    python benchmarks/serving.py --ddpm bundles/cddpm --gan bundles/gan [--requests 100]

1. p50 latency of the class-conditional DDPM at 50 steps (n=1, default guidance) and of the GAN at
   batch 1: Triton pipeline (python flavour, gRPC) vs the in-process ORT Sampler, in alternating
   blocks of calls, so drift on a shared machine hits both alike.
2. Throughput of 8 concurrent clients (DDPM, 50 steps) with dynamic batching vs without.

Each is measured for four repositories: the pipeline running the ONNX itself (components="inline",
1 instance: latency), and calling the component models through Triton (components="bls") with 1
instance, with 8 (8 requests in their sampling loops at once, their denoiser calls batched), and
with 8 but no dynamic batching.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gen.fileio import write_json
from gen.runtime.sampler import Sampler
from gen.serving.loadtest import run_load
from gen.serving.repository import build_repository
from gen.serving.server import TritonServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def paired_p50(local, remote, runs: int, rounds: int = 3, **kwargs) -> dict:
    """In-process and served calls in alternating blocks (not single calls: onnxruntime's worker
    threads keep spinning briefly after a call and would slow whichever side runs next)."""
    local.generate(seed=0, **kwargs), remote.generate(seed=0, **kwargs)
    times = {"in_process": [], "triton": []}
    for _ in range(rounds):
        for name, sampler in (("in_process", local), ("triton", remote)):
            for i in range(runs):
                t0 = time.perf_counter()
                sampler.generate(seed=i, **kwargs)
                times[name].append(time.perf_counter() - t0)
    out = {f"{k}_p50_ms": float(np.median(v) * 1e3) for k, v in times.items()}
    out["ratio"] = out["triton_p50_ms"] / out["in_process_p50_ms"]
    out["added_ms"] = out["triton_p50_ms"] - out["in_process_p50_ms"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ddpm", required=True, help="class-conditional DDPM bundle")
    ap.add_argument("--gan", required=True, help="GAN bundle")
    ap.add_argument("--runs", type=int, default=20, help="calls per block (3 blocks each side)")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--out", default="benchmarks/results/serving.json")
    a = ap.parse_args()
    threads = os.cpu_count() or 1
    result = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()} cores={threads}", "threads": threads}
    setups = {"inline_1_instance": ("inline", 1, False), "bls_1_instance": ("bls", 1, True),
              "bls_8_instances": ("bls", 8, True), "bls_8_instances_no_dynamic_batching": ("bls", 8, False)}
    local_ddpm, local_gan = Sampler(a.ddpm, backend="ort", threads=threads), Sampler(a.gan, backend="ort", threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        for key, (components, instances, batching) in setups.items():
            repo = build_repository([a.ddpm, a.gan], f"{tmp}/{key}", names=["ddpm", "gan"], instances=instances,
                                    dynamic_batching=batching, threads=threads, components=components)
            with TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()) as srv:
                remote_ddpm = Sampler(srv.grpc_url, backend="triton", model="ddpm")
                remote_gan = Sampler(srv.grpc_url, backend="triton", model="gan")
                row = {"identical_uint8_images": bool(np.array_equal(
                    remote_ddpm.generate(n=1, seed=0, steps=50, output="uint8"),
                    local_ddpm.generate(n=1, seed=0, steps=50, output="uint8")))}
                row["ddpm_50_steps_n1"] = paired_p50(local_ddpm, remote_ddpm, a.runs, n=1, steps=50)
                row["gan_n1"] = paired_p50(local_gan, remote_gan, a.runs * 10, n=1)
                (row["ddpm_50_steps_concurrency_8"],) = run_load(srv.grpc_url, "ddpm", [8], a.requests, n=1, steps=50, log=lambda *_: None)
                result[key] = row
                print(key, json.dumps({k: v for k, v in row.items() if k != "ddpm_50_steps_concurrency_8"}), flush=True)
    result["summary"] = {
        key: {"ddpm_p50_ratio": result[key]["ddpm_50_steps_n1"]["ratio"],
              "gan_added_ms": result[key]["gan_n1"]["added_ms"],
              "req_per_s_8_clients": result[key]["ddpm_50_steps_concurrency_8"]["requests_per_s"]}
        for key in setups
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(a.out, result)
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
