"""The tiny decoder against the full VAE decoder of one Stable Diffusion bundle (issue 34, item 1).

    python benchmarks/tiny_decoder.py BUNDLE [--threads 2] [--steps 4,10] [--out benchmarks/results/tiny_decoder.json]

BUNDLE has a tiny decoder (`gen distill decoder BUNDLE --out RUN && gen export BUNDLE --tiny-decoder RUN`).
Writes one JSON with:

- per call: vae_decoder and tiny_decoder on ORT fp32, batch 1, the same latents (the final latents of
  a real sampling run), timed in alternating blocks by gen.runtime.speed.Race; the tiny one's
  speedup with its 90% interval;
- quality: the held-out PSNR gen.json records, and the PSNR of the run's images decoded both ways;
- end to end at each --steps (scheduler ddim, guidance 7.5, batch 1): seconds per image and the
  decoder's share of it with decoder="full" (before) and decoder="tiny" (after), from the backend's
  per-component seconds, repeats alternating.

Timing on a shared machine lies: run it only on idle cores. With --quiet-file F it refuses to time while
F exists (a marker another timing job holds), and it records `uptime`'s load averages before and after, so a
reader can judge the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPT = "a photograph of an astronaut riding a horse"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def per_call(bundle: str, threads: int, latents: np.ndarray, max_seconds: float) -> dict:
    from gen.runtime.backends import create_backend
    from gen.runtime.bundle import load_bundle
    from gen.runtime.speed import Race

    b = load_bundle(bundle)
    with create_backend("ort", b, "cpu", "fp32", threads) as ort:
        feeds = {"latent_sample": latents}
        race = Race({"full": lambda: ort.run("vae_decoder", feeds), "tiny": lambda: ort.run("tiny_decoder", feeds)},
                    "full", threshold=5.0, max_blocks=15, max_seconds=max_seconds, block_seconds=1.0)
        tiny = race.run(progress=print)["tiny"]
        full_ms = round(1e3 * float(np.median([s * r for s, r in zip(race.estimates["tiny"].seconds,
                                                                      race.estimates["tiny"].ratios)])), 2)
    return {"full_ms_per_call": full_ms, "tiny": tiny}


def end_to_end(bundle: str, threads: int, steps: int, repeats: int) -> dict:
    """Seconds per image and the decoder's share, full vs tiny, repeats alternating."""
    from gen.runtime.sampler import Sampler

    out = {"full": [], "tiny": []}
    with Sampler(bundle, backend="ort", precision="fp32", threads=threads) as s:
        s.generate(PROMPT, steps=steps, scheduler="ddim", decoder="tiny")  # warm-up: sessions, first touch
        s.generate(PROMPT, steps=steps, scheduler="ddim")
        for r in range(repeats):
            for decoder in (("full", "tiny") if r % 2 == 0 else ("tiny", "full")):
                before = dict(s.backend.component_seconds)
                t0 = time.perf_counter()
                s.generate(PROMPT, seed=r, steps=steps, scheduler="ddim", decoder=decoder)
                total = time.perf_counter() - t0
                comp = {k: v - before.get(k, 0.0) for k, v in s.backend.component_seconds.items()}
                dec = comp.get("vae_decoder" if decoder == "full" else "tiny_decoder", 0.0)
                out[decoder].append({"total_s": round(total, 3), "decoder_s": round(dec, 3),
                                     "unet_s": round(comp.get("unet", 0.0), 3)})
    def summary(rows):
        total = float(np.median([r["total_s"] for r in rows]))
        dec = float(np.median([r["decoder_s"] for r in rows]))
        return {"total_s": round(total, 3), "decoder_s": round(dec, 3), "decoder_share": round(dec / total, 3), "runs": rows}

    full, tiny = summary(out["full"]), summary(out["tiny"])
    return {"steps": steps, "before_full": full, "after_tiny": tiny,
            "end_to_end_speedup": round(full["total_s"] / tiny["total_s"], 3)}


def quality(bundle: str, threads: int) -> tuple[dict, np.ndarray]:
    """gen.json's held-out figures, and one 10-step run's latents decoded both ways."""
    from gen.runtime.backends.recording import RecordingBackend
    from gen.runtime.bundle import load_bundle
    from gen.runtime.quality import psnr
    from gen.runtime.sampler import Sampler

    b = load_bundle(bundle)
    with RecordingBackend(b, threads) as rec:
        full = Sampler(bundle, backend=rec).generate(PROMPT, seed=0, steps=10)
        latents = rec.recorded["vae_decoder"][-1]["latent_sample"]
        tiny = np.clip(rec.run("tiny_decoder", {"latent_sample": latents}), -1, 1)
    parity = b.manifest.parity["tiny_decoder"]
    return {"gen_json": parity, "psnr_db_this_run": round(psnr(full, tiny), 2), "prompt": PROMPT, "steps": 10}, latents


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", default="4,10")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--quiet-file", default=None, help="refuse to time while this file exists (a marker of another timing job)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tiny_decoder.json"))
    args = ap.parse_args()
    if args.quiet_file and os.path.exists(args.quiet_file):
        sys.exit(f"{args.quiet_file} exists: another job is timing; run this on idle cores")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    result = {"bundle": str(Path(args.bundle).resolve()), "threads": args.threads, "host": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "load_before": load()}
    result["quality"], latents = quality(args.bundle, args.threads)
    print("quality:", json.dumps({k: v for k, v in result["quality"].items() if k != "gen_json"}))
    result["per_call"] = per_call(args.bundle, args.threads, latents, args.max_seconds)
    print("per call:", json.dumps(result["per_call"]["tiny"]))
    result["end_to_end"] = [end_to_end(args.bundle, args.threads, int(s), args.repeats) for s in args.steps.split(",")]
    for e in result["end_to_end"]:
        print(f"{e['steps']} steps: full {e['before_full']['total_s']} s (decoder {e['before_full']['decoder_share']:.0%}), "
              f"tiny {e['after_tiny']['total_s']} s (decoder {e['after_tiny']['decoder_share']:.0%})")
    result["load_after"] = load()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
