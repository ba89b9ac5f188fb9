"""Concurrent clients against a served pipeline: latency percentiles and throughput.

Bounded by request count (and each request by the client's own timeout); traffic goes only to the
URL given, which users point at their own server (tests use 127.0.0.1).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from gen.errors import GenError


def spread(url: str, model: str, requests: int, concurrency: int, one) -> float:
    """Requests 0..requests-1 over `concurrency` threads, each with its own client, as `one(client, i)`
    (which must not raise); the wall seconds they took."""
    from gen.runtime.remote import RemoteGenerator

    lock, counter = threading.Lock(), iter(range(requests))

    def worker():
        client = RemoteGenerator(url, model)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                one(client, i)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def run_load(url: str, model: str, concurrency: list[int], requests: int, n: int = 1, steps: int | None = None,
             labels=None, check=None, log=print, **arguments) -> list[dict]:
    """For each concurrency c: `requests` requests spread over c threads, each with its own client;
    `arguments` go with every request (e.g. the input image of an image-to-image model).

    `check(i, images)` may verify every result (e.g. against in-process images for seed i); a failed
    check or a server error is counted, never raised mid-run.
    """
    from gen.runtime.remote import RemoteGenerator

    if requests < 1 or min(concurrency) < 1:
        raise GenError("--requests and --concurrency must be >= 1")
    rows = []
    for c in concurrency:
        latencies, errors, lock = [], [], threading.Lock()

        def one(client, i, latencies=latencies, errors=errors, lock=lock):
            t0 = time.perf_counter()
            try:
                images = client.generate(n=n, seed=i, steps=steps, labels=labels, **arguments)
                ok = check(i, images) if check else True
            except Exception as e:  # any failure is counted against the run, never lost with the thread
                ok = f"{type(e).__name__}: {e}"
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if ok is not True:
                    errors.append(f"request {i}: {ok}")

        warm = RemoteGenerator(url, model)
        try:
            warm.generate(n=n, seed=0, steps=steps, labels=labels, **arguments)  # warm-up
        finally:
            warm.close()
        wall = spread(url, model, requests, c, one)
        lat = np.asarray(latencies or [float("nan")]) * 1e3
        row = {"concurrency": c, "requests": requests, "completed": len(latencies), "images_per_request": n, "steps": steps,
               "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
               "p99_ms": float(np.percentile(lat, 99)), "requests_per_s": requests / wall,
               "images_per_s": requests * n / wall, "errors": len(errors) + requests - len(latencies), "error_examples": errors[:3]}
        rows.append(row)
        log(f"concurrency {c:3}: p50 {row['p50_ms']:8.2f} ms  p95 {row['p95_ms']:8.2f} ms  "
            f"{row['requests_per_s']:8.1f} req/s  errors {row['errors']}")
    return rows
