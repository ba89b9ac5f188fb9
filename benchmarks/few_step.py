"""Quality and speed against sampling steps: a diffusion teacher with each training-free scheduler,
and its few-step students, on one plot (docs/few_step_<label>.png, where the docs site shows it) and one
JSON (benchmarks/results/few_step_<label>.json).

    python benchmarks/few_step.py --teacher runs/ddpm \
        --student progressive-4=runs/p4 --student consistency=runs/cd --label digits

Quality is `gen eval`'s fd_digits (1000 samples through the shipped Sampler, seed 0) at each step
count a model allows; speed is `gen bench` on ORT fp32 at batch 16 for the teacher's exported bundle
(a student has the teacher's network, so its time at k steps is the teacher's at k steps; one student
bundle is benched too, to show it). Run it alone: a second heavy job on 2 cores skews the times.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="runs/ddpm")
    p.add_argument("--student", action="append", default=[], help="NAME=RUN (repeatable)")
    p.add_argument("--steps", default="1,2,4,8,50")
    p.add_argument("--schedulers", default="ddim,dpm++,euler")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--label", default="digits")
    p.add_argument("--guidance", type=float, default=None, help="a class-conditional teacher's guidance")
    args = p.parse_args(argv)

    from gen.export.onnx_export import export_run
    from gen.runtime.bench import run_bench
    from gen.trainkit.eval.evaluate import evaluate_run
    from gen.trainkit.rundir import RunDir

    steps = [int(s) for s in args.steps.split(",")]
    students = dict(s.split("=", 1) for s in args.student)
    quality = []

    def score(model, run, scheduler, k, **extra):
        r = evaluate_run(run, n=args.n, steps=k, scheduler=scheduler, progress=lambda m: None, **extra)
        row = {"model": model, "scheduler": scheduler, "steps": k, **r["metrics"], "sampling_s": r["seconds"]["sampling"]}
        quality.append(row)
        print(json.dumps(row), flush=True)
        return r

    floor = None
    for scheduler in args.schedulers.split(","):
        for k in steps:
            r = score("teacher", args.teacher, scheduler, k, guidance=args.guidance)
            floor = r["reference"]
    for name, run in students.items():
        config = RunDir(run).read_config()
        d = config["distill"]
        top = max(8, 2 * d["steps"])
        for k in [s for s in steps if s <= top]:
            score(name, run, None, k)

    with tempfile.TemporaryDirectory() as tmp:
        teacher_bundle = export_run(args.teacher, f"{tmp}/teacher", progress=lambda *_: None)
        speed = run_bench(str(teacher_bundle), ["ort"], ["fp32"], steps, [args.batch], repeats=args.repeats, log=print)
        student_speed = None
        if students:
            name, run = next(iter(students.items()))
            bundle = export_run(run, f"{tmp}/student", progress=lambda *_: None)
            student_speed = {"student": name, **run_bench(str(bundle), ["ort"], ["fp32"], steps, [args.batch],
                                                           repeats=args.repeats, log=print)}
    speed_rows = [{"steps": r["steps"], "median_ms": r["end_to_end"]["median_ms"]} for r in speed["rows"]]
    result = {
        "command": "python benchmarks/few_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.date.today().isoformat(), "machine": f"{platform.machine()} cores={speed['environment']['cpu_count']}",
        "environment": speed["environment"], "quality": quality, "reference": floor,
        "speed_ort_fp32": {"batch": args.batch, "teacher": speed_rows,
                           "student": None if not student_speed else {
                               "name": student_speed["student"],
                               "rows": [{"steps": r["steps"], "median_ms": r["end_to_end"]["median_ms"]}
                                        for r in student_speed["rows"]]}},
    }
    out = ROOT / "benchmarks" / "results" / f"few_step_{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot = ROOT / "docs" / f"few_step_{args.label}.png"  # docs/ holds the site's images
    draw(result, plot)
    print(f"wrote {out} and {plot}")
    return 0


def draw(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (q, s) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = {}
    for r in result["quality"]:
        label = r["model"] + (f" ({r['scheduler']})" if r["scheduler"] else "")
        series.setdefault(label, []).append((r["steps"], r["fd_digits"]))
    for label, points in series.items():
        xs, ys = zip(*sorted(points))
        q.plot(xs, ys, marker="o", label=label, linestyle="--" if label.startswith("teacher") else "-")
    if result["reference"]:
        q.axhline(result["reference"]["fd_digits_real_train_vs_held_out"], color="grey", linewidth=0.8,
                  label="real data (train vs held out)")
    q.set(xscale="log", yscale="log", xlabel="sampling steps", ylabel="fd_digits (lower is better)",
          title="quality vs steps")
    q.set_xticks([1, 2, 4, 8, 50], ["1", "2", "4", "8", "50"])
    q.legend(fontsize=7)
    sp = result["speed_ort_fp32"]
    xs, ys = zip(*[(r["steps"], r["median_ms"]) for r in sp["teacher"]])
    s.plot(xs, ys, marker="o", label="teacher network (ORT fp32)")
    if sp["student"]:
        xs2, ys2 = zip(*[(r["steps"], r["median_ms"]) for r in sp["student"]["rows"]])
        s.plot(xs2, ys2, marker="x", linestyle="none", label=f"{sp['student']['name']} bundle")
    s.set(xscale="log", yscale="log", xlabel="sampling steps", ylabel=f"ms per batch of {sp['batch']} (median)",
          title=f"speed vs steps ({result['environment']['threads']} threads)")
    s.set_xticks([1, 2, 4, 8, 50], ["1", "2", "4", "8", "50"])
    s.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
