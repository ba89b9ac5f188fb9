"""Triton serving vs in-process ORT, side by side in one run; writes benchmarks/results/serving.json.

    python benchmarks/serving.py --ddpm bundles/cddpm --gan bundles/gan [--requests 200]

1. p50 latency of the class-conditional DDPM at 50 steps (n=1, default guidance): Triton pipeline
   (python flavour, HTTP) vs the in-process ORT Sampler, same seeds, same threads.
2. The latency Triton adds for the GAN at batch 1, in ms (p50 served - p50 in-process).
3. Throughput of 8 concurrent clients (DDPM, 50 steps) with dynamic batching vs without.
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


def p50(fn, runs: int) -> float:
    fn()
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ddpm", required=True, help="class-conditional DDPM bundle")
    ap.add_argument("--gan", required=True, help="GAN bundle")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--out", default="benchmarks/results/serving.json")
    a = ap.parse_args()
    threads = os.cpu_count() or 1
    result = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()} cores={threads}", "threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        repos = {}
        for batching in (True, False):
            repos[batching] = build_repository([a.ddpm, a.gan], f"{tmp}/repo-{batching}", names=["ddpm", "gan"],
                                               dynamic_batching=batching, threads=threads, instances=8)
        local_ddpm, local_gan = Sampler(a.ddpm, backend="ort", threads=threads), Sampler(a.gan, backend="ort", threads=threads)
        in_process = {
            "ddpm_50_steps_n1_p50_ms": p50(lambda i=0: local_ddpm.generate(n=1, seed=i, steps=50), a.runs),
            "gan_n1_p50_ms": p50(lambda i=0: local_gan.generate(n=1, seed=i), a.runs * 10),
        }
        for batching in (True, False):
            with TritonServer(str(repos[batching]), http_port=free_port(), grpc_port=free_port()) as srv:
                remote_ddpm = Sampler(srv.http_url, backend="triton", model="ddpm")
                remote_gan = Sampler(srv.http_url, backend="triton", model="gan")
                same = np.array_equal(remote_ddpm.generate(n=1, seed=0, steps=50, output="uint8"),
                                      local_ddpm.generate(n=1, seed=0, steps=50, output="uint8"))
                row = {"identical_uint8_images": bool(same)}
                if batching:
                    row["ddpm_50_steps_n1_p50_ms"] = p50(lambda i=0: remote_ddpm.generate(n=1, seed=i, steps=50), a.runs)
                    row["gan_n1_p50_ms"] = p50(lambda i=0: remote_gan.generate(n=1, seed=i), a.runs * 10)
                for c in (1, 8):
                    (load,) = run_load(srv.http_url, "ddpm", [c], a.requests, n=1, steps=50, log=lambda *_: None)
                    row[f"ddpm_50_steps_concurrency_{c}"] = load
                result["triton_dynamic_batching" if batching else "triton_no_dynamic_batching"] = row
    t = result["triton_dynamic_batching"]
    result["in_process_ort"] = in_process
    result["summary"] = {
        "ddpm_p50_ratio_triton_over_in_process": t["ddpm_50_steps_n1_p50_ms"] / in_process["ddpm_50_steps_n1_p50_ms"],
        "gan_latency_added_by_triton_ms": t["gan_n1_p50_ms"] - in_process["gan_n1_p50_ms"],
        "throughput_8_clients_req_per_s_dynamic_batching": t["ddpm_50_steps_concurrency_8"]["requests_per_s"],
        "throughput_8_clients_req_per_s_no_batching": result["triton_no_dynamic_batching"]["ddpm_50_steps_concurrency_8"]["requests_per_s"],
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(a.out, result)
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
