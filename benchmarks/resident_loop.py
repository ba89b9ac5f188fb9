"""The device-resident denoising loop against the same loop stepped on the host, side by side in one
process, per backend: median time per call in alternating blocks, and the largest image difference.

    python benchmarks/resident_loop.py --bundle bundles/ddpm --bundle build/demo-sd [--backend ort --backend eager] [--device cuda]

On the CPU both loops keep their arrays in host memory, so this measures what the resident loop's
step costs against numpy's; the copies and waits it saves are a GPU matter (benchmarks/gpu_check.py
times both there). Writes benchmarks/results/resident_loop.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", action="append", default=None, help="repeatable; default bundles/ddpm")
    p.add_argument("--backend", action="append", default=None, help="repeatable; default ort and eager")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blocks", type=int, default=4, help="alternating blocks of each loop")
    p.add_argument("--repeats", type=int, default=3, help="calls per block")
    p.add_argument("--out", default="benchmarks/results/resident_loop.json")
    args = p.parse_args(argv)

    from gen.runtime.sampler import Sampler

    rows = []
    for bundle, backend in [(b, k) for b in args.bundle or ["bundles/ddpm"] for k in args.backend or ["ort", "eager"]]:
        with Sampler(bundle, backend=backend, device=args.device, threads=args.threads) as s:
            text = s.bundle.manifest.text is not None
            for scheduler, steps in (("ddim", 20), ("ddpm", 20)):
                kw = {"prompt": "a red house", "n": 1} if text else {"n": 16}
                kw.update(steps=steps, scheduler=scheduler, seed=0)
                times, images = {True: [], False: []}, {}
                for block in range(args.blocks + 1):  # block 0 warms both up and is not timed
                    for resident in (True, False) if block % 2 else (False, True):
                        s.backend.resident_loop = resident
                        for _ in range(args.repeats):
                            t = time.perf_counter()
                            images[resident] = s.generate(**kw)
                            if block:
                                times[resident].append(time.perf_counter() - t)
                host, resident = (statistics.median(times[k]) * 1000 for k in (False, True))
                rows.append({"bundle": bundle, "backend": backend, "scheduler": scheduler, "steps": steps, "n": kw["n"],
                             "host_loop_ms": round(host, 2), "resident_loop_ms": round(resident, 2),
                             "host_over_resident": round(host / resident, 3),
                             "max_abs_diff": float(np.abs(images[True] - images[False]).max())})
                print(json.dumps(rows[-1]), flush=True)
    result = {"command": " ".join([sys.executable.split("/")[-1], *sys.argv]), "machine": platform.platform(),
              "processor": platform.processor() or platform.machine(), "device": args.device, "threads": args.threads,
              "date": datetime.date.today().isoformat(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
