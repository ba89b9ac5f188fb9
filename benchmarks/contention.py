"""Two gen jobs on the same cores: how much of its solo speed each keeps, for training and sampling.

The issue's target: two `gen train ddpm` started together keep >= 40% of their solo steps/s each (a
fair share of 2 cores is 50%), and two `gen bench` likewise. Each case runs solo, then as a pair
started together, alternating (solo, pair, solo, pair), and is run twice: as gen runs by default
(threads adapt to other jobs' load: gen.runtime.threads, for training and sampling) and pinned to all
cores (OMP_NUM_THREADS set: the behaviour before, for comparison). Each pair is also set against the
solo run of its own block, since a solo figure here moves between blocks. Check `uptime` first:
nothing else may run meanwhile.

    python benchmarks/contention.py --out benchmarks/results/contention.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GEN = [sys.executable, "-m", "gen"]


def train_rate(out: Path, env: dict, steps: int) -> subprocess.Popen:
    return subprocess.Popen([*GEN, "train", "ddpm", "--data", "digits", "--out", str(out), "--steps", str(steps),
                             "--quiet", "--force", "--checkpoint-every", str(10 * steps), "--sample-every", str(10 * steps)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def read_train(out: Path) -> float:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return rows[-1]["step"] / rows[-1]["elapsed_s"]


def bench_proc(bundle: Path, out: Path, env: dict, repeats: int) -> subprocess.Popen:
    return subprocess.Popen([*GEN, "bench", str(bundle), "--backends", "ort", "--steps", "50", "--batch", "16",
                             "--repeats", str(repeats), "--warmup", "2", "--json", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def read_bench(out: Path) -> float:
    row = json.loads(out.read_text())["rows"][0]
    return 1e3 / row["end_to_end"]["median_ms"]  # calls per second


def together(start, read, tmp: Path, k: int) -> list[float]:
    outs = [tmp / f"job{i}-{time.monotonic_ns()}" for i in range(k)]
    procs = [start(o) for o in outs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(err[-2000:])
    return [read(o) for o in outs]


def case(name, start, read, tmp, blocks: int) -> dict:
    solo, pair, kept_in_block = [], [], []
    for _ in range(blocks):
        solo += together(start, read, tmp, 1)
        pair += (both := together(start, read, tmp, 2))
        kept_in_block += [p / solo[-1] for p in both]
    s = statistics.median(solo)
    kept = [p / s for p in pair]
    print(f"{name}: solo {[round(x, 3) for x in solo]}/s, pair {[round(p, 3) for p in pair]} -> kept {min(kept):.0%}.."
          f"{max(kept):.0%} of the median solo, {min(kept_in_block):.0%}..{max(kept_in_block):.0%} of its block's", flush=True)
    return {"solo_per_s": solo, "pair_per_s": pair, "kept_fraction": kept, "min_kept": min(kept),
            "kept_of_block_solo": kept_in_block, "median_kept": statistics.median(kept)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400, help="training steps per run")
    ap.add_argument("--repeats", type=int, default=30, help="timed bench calls per run (threads adapt after "
                    "gen.runtime.threads.CHECK_SECONDS, so most calls must come after that)")
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "contention.json"))
    args = ap.parse_args()
    from gen.runtime.host import LoadWatch, fingerprint

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    variants = {"default": base, "pinned OMP_NUM_THREADS=2 (before)": {**base, "OMP_NUM_THREADS": "2"}}
    report = {"command": " ".join([sys.executable, *sys.argv]), "host": fingerprint(), "loadavg_before": os.getloadavg(),
              "cases": {}}
    with tempfile.TemporaryDirectory() as tmp, LoadWatch() as watch:
        tmp = Path(tmp)
        bundle = tmp / "bundle"
        subprocess.run([*GEN, "train", "ddpm", "--data", "digits", "--out", str(tmp / "run"), "--steps", "50", "--quiet"],
                       check=True, env=base, stdout=subprocess.DEVNULL)
        subprocess.run([*GEN, "export", str(tmp / "run"), "--out", str(bundle)], check=True, env=base, stdout=subprocess.DEVNULL)
        for label, env in variants.items():
            report["cases"][f"train ddpm, {label}"] = case(f"train ({label})", lambda o, env=env: train_rate(o, env, args.steps),
                                                           read_train, tmp, args.blocks)
            report["cases"][f"bench ort digits ddpm, {label}"] = case(
                f"bench ({label})", lambda o, env=env: bench_proc(bundle, o.with_suffix(".json"), env, args.repeats),
                lambda o: read_bench(o.with_suffix(".json")), tmp, args.blocks)
    report["load"] = watch.figures
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
