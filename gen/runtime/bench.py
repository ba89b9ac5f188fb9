"""Latency benchmark of a bundle across backends, precisions, step counts and batch sizes.

Every configuration runs in this one process with the same thread count, the same seed and a warm-up
first, and the configurations are timed in alternating rounds (one call of each, in a rotating order,
then the next round), so a slow spell of a shared host falls on every row alike: the ratios between
rows are a side-by-side comparison, not a comparison of one minute with the next.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass, field

import numpy as np

from gen.errors import GenError, with_article
from gen.runtime.defaults import BENCH_REPEATS, BENCH_STEPS, BENCH_WARMUP

PLAN = "plan"  # the precision column of `--backends auto` rows: the plan chooses per component


WIDE = 1.5  # a row whose p95 is past 1.5x its median was disturbed while timed


def _percentiles(samples: list[float]) -> dict:
    a = np.asarray(samples)
    q1, q3 = np.percentile(a, [25, 75])
    med = float(np.median(a))
    return {"median_ms": med * 1e3, "p95_ms": float(np.percentile(a, 95) * 1e3), "runs": len(a),
            "iqr_ms": float(q3 - q1) * 1e3, "wide_spread": bool(np.percentile(a, 95) > WIDE * med)}


def reset_peak_rss() -> bool:
    """Restart the kernel's high-water mark of this process's RSS (Linux >= 4.0); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak RSS since the last reset where the kernel reports it, else since process start."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rounds(fns: list, warmup: int, repeats: int) -> list[list[float]]:
    """Each fn warmed up, then timed once per round, round after round, each round starting one
    further along (no configuration always runs right after the same other one): per fn, its times."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    out: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        for k in range(len(fns)):
            i = (r + k) % len(fns)
            t0 = time.perf_counter()
            fns[i]()
            out[i].append(time.perf_counter() - t0)
    return out


def run_bench(bundle: str, backends: list[str], precisions: list[str], steps: list[int] | None, batches: list[int],
              warmup: int = BENCH_WARMUP, repeats: int = BENCH_REPEATS, threads: int | None = None, device: str = "cpu", log=print) -> dict:
    from gen.runtime.sampler import AUTO, Sampler

    if repeats < 1 or warmup < 0:
        raise GenError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    from gen.runtime.backends import backend_names
    from gen.runtime.bundle import load_bundle
    from gen.runtime.precision import PRECISIONS, check_precision

    loaded = load_bundle(bundle)  # a bad path or manifest is an error, not a skipped row
    spec = loaded.spec
    for name, given, allowed in (("backend", backends, (*backend_names(), AUTO)), ("precision", precisions, PRECISIONS)):
        bad = [v for v in given if v not in allowed]
        if bad or not given:
            raise GenError(f"unknown {name} {', '.join(map(repr, bad)) or '(none given)'}; choose from {', '.join(allowed)}")
    if steps is not None and not spec.diffusion:
        raise GenError(f"--steps applies to diffusion bundles; this is {with_article(spec.name)} bundle (one network call per batch)")
    steps = steps or list(BENCH_STEPS)
    limit = spec.limits_for(loaded, None).n  # every configuration is checked before any runs (none is timed and then lost)
    if max(batches) > limit:
        raise GenError(f"--batch {max(batches)} is over this bundle's limit of {limit} images per call; nothing was run. "
                       f"Give batch sizes up to {limit}")
    if threads is not None and threads < 1:
        raise GenError(f"--threads must be at least 1, got {threads}")
    # no count given: each backend runs as gen generate would, on all cores while the host is otherwise
    # idle and fewer while another job shares them (gen.runtime.threads); describe() says what changed
    skipped, described, contenders = [], {}, []
    for backend in backends:
        for precision in ([PLAN] if backend == AUTO else precisions):  # the plan picks its own precisions
            missing = [] if backend == AUTO else \
                [c for c, comp in loaded.components.items() if check_precision(precision).file not in comp.files]
            if missing and backend != "eager":  # found here, not half-way through the rows already timed
                reason = f"the bundle has no {precision} {missing[0]} (re-export with {check_precision(precision).export_hint})"
                skipped.append({"backend": backend, "precision": precision, "reason": reason})
                log(f"skip {backend}/{precision}: {reason}")
                continue
            try:
                sampler = Sampler(bundle, backend=backend, device=device, threads=threads,
                                  precision=None if precision == PLAN else precision)
            except GenError as e:  # this combination cannot run here (no torch, no GPU, no fp16 file)
                skipped.append({"backend": backend, "precision": precision, "reason": str(e)})
                log(f"skip {backend}/{precision}: {e}")
                continue
            described[f"{backend}/{precision}"] = {**sampler.backend.describe(), "plan_note": sampler.plan_note}
            if sampler.plan_note:
                log(f"auto: {sampler.plan_note}")
            contenders.append(Contender(sampler, backend, precision))
    try:
        rows = _time_contenders(contenders, batches, steps, warmup, repeats, skipped, log)
        for c in contenders:  # another job came or went while timing: say so beside the figures
            changes = getattr(c.sampler.backend, "thread_changes", [])
            if changes:
                described[f"{c.backend}/{c.precision}"]["threads_changed"] = changes
                log(f"{c.backend}/{c.precision}: {changes[-1]}")
    finally:
        for c in contenders:
            c.sampler.close()
    busy = [r for r in rows if r["busy"] or r["end_to_end"]["wide_spread"]]
    if busy:
        log(f"warning: {len(busy)} of {len(rows)} rows were timed on a busy host or spread wide (marked 'busy' / "
            f"'wide_spread' in the JSON; '!' above): {next((r['busy'] for r in busy if r['busy']), 'p95 past 1.5x the median')}")
    return {"bundle": str(bundle), "rows": rows, "skipped": skipped, "backends": described, "busy_rows": len(busy),
            "environment": environment(threads), "settings": {"warmup": warmup, "repeats": repeats, "device": device}}


@dataclass
class Contender:
    sampler: object
    backend: str
    precision: str
    overheads: list = field(default_factory=list)


def _time_contenders(contenders: list[Contender], batches, steps, warmup: int, repeats: int, skipped: list,
                     log) -> list[dict]:
    """Every configuration's rows: each component's calls, and whole sampling calls at each batch size
    and step count, the configurations in alternating rounds (a step count past a bundle's limit is
    skipped for that configuration, said once). Rows come back grouped by configuration."""
    from gen.runtime.host import LoadWatch

    if not contenders:
        return []
    spec, rows = contenders[0].sampler.bundle.spec, []
    for batch in batches:
        comps: list[dict] = [{} for _ in contenders]
        for name in contenders[0].sampler.bundle.components:
            feeds = spec.example_feeds(contenders[0].sampler.bundle, name, batch)
            times = _rounds([lambda c=c: c.sampler.backend.outputs(name, feeds) for c in contenders], warmup, repeats)
            for i, t in enumerate(times):
                comps[i][name] = _percentiles(t)
        for s in (steps if spec.diffusion else [None]):
            able = [i for i, c in enumerate(contenders) if s is None or s <= c.sampler.limits.steps]
            for i in sorted(set(range(len(contenders))) - set(able)):  # e.g. 50 steps of a 4-step student
                c = contenders[i]
                if batch == batches[0]:
                    limit = c.sampler.limits.steps
                    skipped.append({"backend": c.backend, "precision": c.precision, "steps": s,
                                    "reason": f"steps {s} is over this bundle's limit of {limit}"})
                    log(f"skip {c.backend}/{c.precision} steps {s}: over this bundle's limit of {limit}")
            if not able:
                continue
            peaks = {}
            for i in able:  # each one's memory high-water mark over its own first calls (others stay resident)
                per_config = reset_peak_rss()
                _generate(contenders[i], batch, s, spec)
                peaks[i] = (peak_rss_mib(), per_config)
            watch = LoadWatch().start()
            times = _rounds([lambda c=contenders[i]: _generate(c, batch, s, spec) for i in able], max(warmup - 1, 0),
                            repeats)
            load = watch.stop()
            for i, t in zip(able, times):
                c = contenders[i]
                e2e = _percentiles(t)
                overheads = c.overheads[-repeats:]
                row = {"load": load, "busy": load["busy"], "backend": c.backend, "precision": c.precision, "batch": batch,
                       "steps": s, "end_to_end": e2e, "images_per_s": batch / (e2e["median_ms"] / 1e3),
                       "sampler_overhead_fraction": float(np.median(overheads)), "components": comps[i],
                       "peak_rss_mib": peaks[i][0], "config": i,
                       "peak_rss_scope": ("this configuration's first calls, the others loaded beside it" if peaks[i][1]
                                          else "process so far")}
                rows.append(row)
                log(_row_line(row))
    rows.sort(key=lambda r: r["config"])  # stable: each configuration's batches and step counts in order
    for r in rows:
        del r["config"]
    return rows


def _generate(c: Contender, batch: int, steps, spec) -> None:
    c.sampler.generate(n=batch, seed=0, **spec.bench_arguments(steps, c.sampler.bundle))
    timing = c.sampler.last_timing
    c.overheads.append(timing["overhead_s"] / timing["total_s"])


def _row_line(r: dict) -> str:
    steps = "-" if r["steps"] is None else r["steps"]
    e = r["end_to_end"]
    flag = " !" if r.get("busy") or e.get("wide_spread") else ""
    return (f"{r['backend']:>8} {r['precision']:>5} batch {r['batch']:>3} steps {steps:>4}  "
            f"median {e['median_ms']:9.2f} ms  p95 {e['p95_ms']:9.2f} ms  {r['images_per_s']:9.1f} img/s  "
            f"overhead {100 * r['sampler_overhead_fraction']:4.1f}%  peak RSS {r['peak_rss_mib']:7.1f} MiB{flag}")


def speedups(result: dict, baseline: str = "eager") -> list[dict]:
    """Each non-baseline row's end-to-end speed relative to the baseline row with the same settings."""
    base = {(r["precision"], r["batch"], r["steps"]): r for r in result["rows"] if r["backend"] == baseline}
    base_fp32 = {(r["batch"], r["steps"]): r for r in result["rows"] if r["backend"] == baseline and r["precision"] == "fp32"}
    out = []
    for r in result["rows"]:
        if r["backend"] == baseline:
            continue
        b = base.get((r["precision"], r["batch"], r["steps"])) or base_fp32.get((r["batch"], r["steps"]))
        if b:
            out.append({"backend": r["backend"], "precision": r["precision"], "batch": r["batch"], "steps": r["steps"],
                        f"speedup_vs_{baseline}_{b['precision']}": b["end_to_end"]["median_ms"] / r["end_to_end"]["median_ms"]})
    return out


def environment(threads: int | None) -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    from gen.versions import versions as installed

    versions = {k: v for k, v in installed(("gen", "numpy", "torch", "diffusers", "onnxruntime", "onnxruntime-gpu", "openvino")).items() if v}
    from gen.runtime.threads import ThreadShare

    share = ThreadShare(threads)
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "threads": share.threads, "threads_rule": share.describe(),
            "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions}


def plot(result: dict, path: str) -> bool:
    """Bar chart of end-to-end latency per configuration; False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    import io

    from gen.images import MARK
    from gen.outputs import write_output

    rows = result["rows"]
    labels = [f"{r['backend']}/{r['precision']}\nb{r['batch']}" + ("" if r["steps"] is None else f" s{r['steps']}") for r in rows]
    values = [r["end_to_end"]["median_ms"] for r in rows]
    colors = ["#4c72b0" if r["backend"] == "eager" else "#dd8452" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4))
    bars = ax.bar(range(len(rows)), values, color=colors)
    ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=7)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    log = max(values) / max(min(values), 1e-9) > 50  # mixed 1-step and 50-step rows need a log axis
    ax.set_ylabel("end-to-end median latency (ms" + (", log)" if log else ")"))
    if log:
        ax.set_yscale("log")
    ax.set_title(f"gen bench {os.path.basename(result['bundle'].rstrip('/'))} ({result['environment']['threads']} threads)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, metadata={"Software": MARK})  # gen's picture, replaceable as such
    plt.close(fig)
    write_output(path, buf.getvalue(), "--plot")
    return True
