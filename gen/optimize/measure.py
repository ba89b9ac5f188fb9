"""A candidate's two figures: quality (gen eval's metrics on its bundle, the same seeds for all) and latency
(one race of every candidate against the teacher's reference in alternating blocks: ratios, not medians
taken minutes apart, so the speed order holds still on a shared machine)."""

from __future__ import annotations

from typing import Callable

from gen.errors import GenError


def quality(bundle: str, options: dict, n: int, seed: int, backend: str = "ort", precision: str | None = "fp32",
            progress: Callable[[str], None] = lambda m: None) -> dict:
    """gen eval's metrics of a bundle sampled with `options` (steps, scheduler): fd, label accuracy, ..."""
    from gen.trainkit.eval.evaluate import evaluate_run

    result = evaluate_run(bundle, n=n, seed=seed, backend=backend, precision=precision, progress=progress, **options)
    return {"metrics": result["metrics"], "sampling": result.get("sampling", {}), "sampler": result.get("sampler")}


def figure(metrics: dict, metric: str) -> float:
    """The gate metric's value in gen eval's metrics: `fd` is the fd_<data> key, `accuracy` label accuracy,
    `psnr` and `features` a Stable Diffusion candidate's image PSNR and feature distance against the reference
    (gen.optimize.sd_quality)."""
    keys = {"accuracy": "label_accuracy", "psnr": "psnr_db", "features": "feature_distance"}
    if metric in keys:
        key = keys[metric]
    else:
        key = next((k for k in metrics if k.startswith("fd_")), None)
    if key is None or key not in metrics:
        raise GenError(f"gen eval reported no {metric} figure (metrics: {', '.join(metrics)}); this gate cannot be checked here", "gate")
    return float(metrics[key])


def race(contenders: dict[str, Callable[[], object]], baseline: str, max_seconds: float,
         progress: Callable[[str], None] | None = None, min_blocks: int | None = None) -> dict[str, dict]:
    """Every contender against `baseline` in rotating blocks (gen.runtime.speed.Race, threshold 1): each
    one's speed-up over the baseline with its interval, and its own ms per call. The baseline's own
    ms per call is added under its name. `min_blocks`: at least this many blocks (within max_seconds)
    where the figure itself is reported, not only which side is faster, so its interval narrows."""
    from gen.runtime.speed import MIN_BLOCKS, Race, median

    timing = Race(contenders, baseline, 1.0, max_seconds=max_seconds, min_blocks=min_blocks or MIN_BLOCKS)
    summaries = timing.run(progress)
    summaries[baseline] = {"speedup": 1.0, "interval": [1.0, 1.0], "baseline": True,
                           "ms_per_call": round(1e3 * median(timing.baseline_seconds), 4)}
    return summaries


def sampler_call(sampler, batch: int, seed: int, options: dict) -> Callable[[], object]:
    """One end-to-end sampling call: what a user of the bundle waits for."""
    return lambda: sampler.generate(n=batch, seed=seed, **options)
