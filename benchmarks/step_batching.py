"""Step-level vs request-level batching of a served diffusion pipeline, side by side in one run;
writes benchmarks/results/step_batching.json and a plot.

    python benchmarks/step_batching.py --bundle bundles/cddpm [--concurrency 1,4,8,16] [--requests 48]
    python benchmarks/step_batching.py --bundle bundles/sd-slots --adapters demo,half,neg,   # SD: prompts x adapters

Two Triton repositories of the same bundle (inline pipeline, equal instances and threads), one built
with `--batching request` (today's path: an instance samples one request start to end) and one with
`--batching step` (gen.runtime.step_batch), both servers up at once and measured in alternating
blocks, so drift on a shared machine hits both alike:

1. Throughput and p50/p95/p99 latency at each concurrency, for a mix of 4-step and 50-step requests
   (every other request 4 steps; class labels vary, or for a text-to-image bundle prompts and, with
   --adapters, LoRA adapters: "" = the base), each kind's latency apart too.
2. Head of line: a 4-step request sent just after a burst of 50-step ones (concurrency in all
   = the burst + 1), its latency against its unloaded latency (target <= 3x).
3. The denoising network's own ms per call at 1, 2, 4 and 8 rows, on 1 thread and on --threads: the
   most that merging rows can save, whoever schedules them (with 2 instances x 1 thread at 8 clients,
   each instance sees about 4 rows a step).

The images are checked against the in-process Sampler's on the way (any difference is an error).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from gen.fileio import write_json
from gen.runtime.remote import RemoteGenerator
from gen.serving.loadtest import spread
from gen.serving.repository import build_repository
from gen.serving.server import TritonServer

MODES = ("request", "step")
MARKER = "step-batching timing starts"  # printed right before the timed part (for a quiet guard)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROMPTS = ("a red house", "a cat", "a boat by a lake", "a tree")
MIX = {"adapters": None, "text": False}  # set in main() from the bundle and --adapters


def arguments(i: int, steps: int | None = None) -> dict:
    """Request i of the mix: every other one 4 steps, the rest 50; labels cycle (a text-to-image bundle:
    prompts cycle, and adapters, where given, cycle against them)."""
    args = {"n": 1, "seed": i, "steps": steps or (4 if i % 2 == 0 else 50)}
    if not MIX["text"]:
        return {**args, "labels": i % 10}
    args["prompt"] = PROMPTS[i % len(PROMPTS)]
    if MIX["adapters"]:
        args["lora"] = MIX["adapters"][(i // 2) % len(MIX["adapters"])]  # 4- and 50-step requests of every adapter
    return args


def tolerance() -> float:
    return 1e-3 if MIX["text"] else 1e-5  # the bars: SD's, pixel diffusion's


def mixed_load(url: str, model: str, concurrency: int, requests: int, expected: dict) -> dict:
    """`requests` requests of the mix over `concurrency` client threads: latencies per kind, throughput."""
    lock = threading.Lock()
    latencies: dict[int, list[float]] = {4: [], 50: []}
    errors: list[str] = []

    def one(client, i):
        args = arguments(i)
        t0 = time.perf_counter()
        try:
            images = client.generate(**args)
            ok = bool(np.abs(images - expected[i]).max() <= tolerance()) if i in expected else True
        except Exception as e:  # noqa: BLE001 - counted, never lost with the thread
            ok = f"{type(e).__name__}: {e}"
        dt = time.perf_counter() - t0
        with lock:
            latencies[args["steps"]].append(dt)
            if ok is not True:
                errors.append(f"request {i}: {ok or 'images differ from in-process'}")

    wall = spread(url, model, requests, concurrency, one)
    return {"wall_s": wall, "latencies": latencies, "errors": errors}


def summary(runs: list[dict], concurrency: int) -> dict:
    def pct(values):
        ms = np.asarray(values or [np.nan]) * 1e3
        return {f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)}

    every = [x for r in runs for v in r["latencies"].values() for x in v]
    done = len(every)
    return {"concurrency": concurrency, "requests": done, "requests_per_s": done / sum(r["wall_s"] for r in runs),
            **pct(every), "steps_4": pct([x for r in runs for x in r["latencies"][4]]),
            "steps_50": pct([x for r in runs for x in r["latencies"][50]]),
            "errors": sum(len(r["errors"]) for r in runs), "error_examples": [e for r in runs for e in r["errors"]][:3]}


def head_of_line(url: str, model: str, burst: int, rounds: int) -> dict:
    """A 4-step request's latency alone, and sent 20 ms after `burst` 50-step requests (medians)."""
    client = RemoteGenerator(url, model)
    alone = []
    for i in range(rounds * 2):
        t0 = time.perf_counter()
        client.generate(**arguments(2 * i, steps=4))
        alone.append(time.perf_counter() - t0)
    loaded = []
    for r in range(rounds):
        longs = [threading.Thread(target=lambda k=k: RemoteGenerator(url, model).generate(
            **arguments(100 + k, steps=50))) for k in range(burst)]
        for t in longs:
            t.start()
        time.sleep(0.02)
        t0 = time.perf_counter()
        client.generate(**arguments(2 * r, steps=4))
        loaded.append(time.perf_counter() - t0)
        for t in longs:
            t.join()
    client.close()
    a, b = float(np.median(alone) * 1e3), float(np.median(loaded) * 1e3)
    return {"burst_50_step_requests": burst, "unloaded_p50_ms": a, "behind_burst_p50_ms": b, "ratio": b / a,
            "behind_burst_ms": [x * 1e3 for x in loaded]}


def network_costs(bundle, threads: list[int], rows=(1, 2, 4, 8), calls: int = 200, rounds: int = 5) -> dict:
    """The denoising network's ms per call at each row count and thread count (ORT, the family's example
    feeds): how much a batch can save at best, whoever schedules it. Rounds alternate the row counts."""
    import onnxruntime as ort

    component = "unet" if "unet" in bundle.components else "denoiser"
    path = bundle.path / bundle.components[component].files["fp32"].path
    costs = {}
    for n in threads:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = n, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds = {r: bundle.spec.example_feeds(bundle, component, r) for r in rows}  # the family's own sizes
        seconds = {r: [] for r in rows}
        for r in rows:
            session.run(None, feeds[r])
        for k in range(rounds):
            for r in (rows if k % 2 == 0 else rows[::-1]):
                t0 = time.perf_counter()
                for _ in range(calls):
                    session.run(None, feeds[r])
                seconds[r].append((time.perf_counter() - t0) / calls)
        costs[str(n)] = {str(r): float(np.median(v) * 1e3) for r, v in seconds.items()}
    return {"component": component, "ms_per_call": costs}


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, style in zip(MODES, ("o--", "s-")):
        rows = result["load"][mode]
        cs = [r["concurrency"] for r in rows]
        ax1.plot(cs, [r["requests_per_s"] for r in rows], style, label=f"{mode}-level")
        ax2.plot(cs, [r["steps_4"]["p95_ms"] for r in rows], style, label=f"{mode}-level, 4-step p95")
        ax2.plot(cs, [r["steps_50"]["p95_ms"] for r in rows], style, alpha=0.5, label=f"{mode}-level, 50-step p95")
    ax1.set(xlabel="concurrent clients", ylabel="requests / s", title="throughput (4/50-step mix)")
    ax2.set(xlabel="concurrent clients", ylabel="latency p95 (ms)", yscale="log", title="latency by request kind")
    for ax in (ax1, ax2):
        ax.set_xticks(cs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(result["title"], fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True, help="class-conditional DDPM bundle (digits), or a text-to-image one")
    ap.add_argument("--adapters", default=None, help="a LoRA-slot bundle's adapters to cycle, comma-separated ('' = base)")
    ap.add_argument("--concurrency", default="1,4,8,16")
    ap.add_argument("--requests", type=int, default=32, help="requests per block (each block: both modes)")
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--burst", type=int, default=7, help="50-step requests ahead of the 4-step one")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/step_batching.json")
    ap.add_argument("--plot", default="docs/step_batching.png")
    a = ap.parse_args()
    from gen.runtime.sampler import Sampler

    from gen.runtime.bundle import load_bundle

    loaded = load_bundle(a.bundle)
    MIX["text"] = "prompt" in loaded.spec.accepts(loaded)
    MIX["adapters"] = a.adapters.split(",") if a.adapters is not None else None
    local = Sampler(a.bundle, backend="ort", threads=1)
    expected = {i: local.generate(**arguments(i)) for i in range(16)}  # the first 16 requests of a block are checked
    result = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()} cores={os.cpu_count()}",
              "instances": a.instances, "threads": a.threads, "load": {m: [] for m in MODES}, "head_of_line": {},
              "adapters": MIX["adapters"],
              "title": f"{Path(a.bundle).name}{' + adapters ' + a.adapters if a.adapters else ''}, Triton inline pipeline, "
                       f"{a.instances} instance(s) x {a.threads} threads"}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        for mode in MODES:
            repo = build_repository([a.bundle], f"{tmp}/{mode}", names=["model"], instances=a.instances, threads=a.threads,
                                    batching=mode, precision="fp32")
            servers[mode] = TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()).start()
        try:
            for mode in MODES:  # warm-up: sessions, clients
                mixed_load(servers[mode].grpc_url, "model", 4, 8, expected)
            print(MARKER, flush=True)
            t_start = time.perf_counter()
            for c in [int(x) for x in a.concurrency.split(",")]:
                runs = {m: [] for m in MODES}
                for block in range(a.blocks):
                    for mode in (MODES if block % 2 == 0 else MODES[::-1]):
                        runs[mode].append(mixed_load(servers[mode].grpc_url, "model", c, a.requests, expected))
                for mode in MODES:
                    row = summary(runs[mode], c)
                    result["load"][mode].append(row)
                    print(f"{mode:8} c={c:3}: {row['requests_per_s']:6.1f} req/s  p50 {row['p50_ms']:7.1f}  p95 {row['p95_ms']:7.1f}"
                          f"  p99 {row['p99_ms']:7.1f} ms  4-step p95 {row['steps_4']['p95_ms']:7.1f}  errors {row['errors']}",
                          flush=True)
            for mode in MODES:
                result["head_of_line"][mode] = head_of_line(servers[mode].grpc_url, "model", a.burst, a.rounds)
                print(mode, "head of line", json.dumps({k: v for k, v in result["head_of_line"][mode].items()
                                                         if k != "behind_burst_ms"}), flush=True)
            result["timed_s"] = time.perf_counter() - t_start
        finally:
            for srv in servers.values():
                srv.stop()
    result["network"] = network_costs(loaded, sorted({1, a.threads}), calls=20 if MIX["text"] else 200)  # servers down
    print("network ms per call by threads, rows:", json.dumps(result["network"]["ms_per_call"]), flush=True)
    c8 = {m: next((r for r in result["load"][m] if r["concurrency"] == 8), None) for m in MODES}
    if c8["step"] and c8["request"]:
        result["throughput_ratio_c8"] = c8["step"]["requests_per_s"] / c8["request"]["requests_per_s"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(a.out, result)
    plot(result, a.plot)
    print(json.dumps({"throughput_ratio_c8": result.get("throughput_ratio_c8"),
                      "head_of_line_ratio": {m: result["head_of_line"][m]["ratio"] for m in MODES},
                      "timed_s": result["timed_s"]}, indent=2))


if __name__ == "__main__":
    main()
