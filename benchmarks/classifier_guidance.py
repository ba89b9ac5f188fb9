"""Classifier guidance against classifier-free guidance on the digits DDPMs: label accuracy of the
requested digits, fd_digits and precision/recall at each scale, one JSON and one markdown table.

    python benchmarks/classifier_guidance.py --guided runs/ddpm-guided --conditional runs/cddpm

`--guided` is a run of `gen train noisy-classifier runs/ddpm` (the unconditional DDPM with its noisy
classifier), `--conditional` a `gen train ddpm --conditional` run. Every figure is `gen eval`'s (1000
samples through the shipped Sampler, eager backend, seed 0, 50 DDIM steps, labels cycling 0..9),
scored by gen's metric classifier, which is not the guiding classifier (a separate network trained
on clean digits), so guidance cannot score itself.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--guided", default="runs/ddpm-guided")
    p.add_argument("--conditional", default="runs/cddpm")
    p.add_argument("--scales", default="0,0.5,1,2,4", help="classifier scales, with DDPM ancestral sampling")
    p.add_argument("--ddim-scales", default="1,2", help="classifier scales with DDIM (eta 0), to show why not")
    p.add_argument("--guidance", default="1,1.5", help="classifier-free guidance scales (DDIM, the run's default)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--out", default="benchmarks/results/classifier_guidance.json")
    args = p.parse_args(argv)

    from gen.trainkit.eval.evaluate import evaluate_run

    cg, cfg = "classifier guidance (unconditional DDPM)", "classifier-free guidance (conditional DDPM)"
    plan = ([(cg, args.guided, "classifier_scale", float(v), "ddpm") for v in args.scales.split(",")]
            + [(cg, args.guided, "classifier_scale", float(v), "ddim") for v in args.ddim_scales.split(",")]
            + [(cfg, args.conditional, "guidance", float(v), "ddim") for v in args.guidance.split(",")]
            + [(cfg, args.conditional, "guidance", 1.0, "ddpm")])
    rows = []
    for label, run, key, v, scheduler in plan:
        t0 = time.perf_counter()
        m = evaluate_run(run, n=args.n, scheduler=scheduler, **{key: v})["metrics"]
        rows.append({"method": label, "run": run, "scheduler": scheduler, key: v, "label_accuracy": m.get("label_accuracy"),
                     "fd_digits": m["fd_digits"], "precision": m["precision_k3"], "recall": m["recall_k3"],
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    out = {"command": "python " + " ".join(["benchmarks/classifier_guidance.py", *(argv or sys.argv[1:])]),
           "date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {_cores()} cores",
           "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(table(rows))
    return 0


def table(rows) -> str:
    lines = ["| method | sampler (50 steps) | scale | label accuracy | fd_digits | precision / recall |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        scale = r.get("classifier_scale", r.get("guidance"))
        name = "s" if "classifier_scale" in r else "w"
        acc = "-" if r["label_accuracy"] is None else f"{100 * r['label_accuracy']:.1f}%"
        lines.append(f"| {r['method']} | {r['scheduler']} | {name} = {scale:g} | {acc} | {r['fd_digits']:.2f} | "
                     f"{r['precision']:.2f} / {r['recall']:.2f} |")
    return "\n".join(lines)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    raise SystemExit(main())
