"""`gen tune BUNDLE`: measure this host's fastest backend x precision per component, keep it as a plan."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gen.errors import GenError


def tune(
    bundle: Annotated[str, typer.Argument(help="Bundle directory written by `gen export`.")],
    n: Annotated[int, typer.Option(help="Images per sampling call to plan for: speed rankings change with batch size.")] = 1,
    steps: Annotated[Optional[int], typer.Option(help="Diffusion steps per call to plan for (default: the bundle's).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads to time with (default: the cores this process may use, and runs of the plan then adapt their threads to other jobs; a count given here is pinned for those runs too).")] = None,
    min_psnr: Annotated[float, typer.Option(help="Images must reach this PSNR (dB) against ORT fp32 from the same seed.")] = 30.0,
    threshold: Annotated[float, typer.Option(help="A contender replaces ORT fp32 only if its speed-up's 90% interval lies above this.")] = 1.05,
    max_seconds: Annotated[float, typer.Option(help="Time budget for the timing blocks, in seconds; past it, what is not decided stays undecided.")] = 120.0,
    backends: Annotated[str, typer.Option(help="Comma-separated backends to try: ort, openvino.")] = "ort,openvino",
) -> None:
    """Time every backend x precision this host offers on BUNDLE in alternating blocks, keep the fastest
    that draws the same images, and write it to BUNDLE/plans/<host id>.json.

    `gen generate`, `Sampler(BUNDLE)`, `gen bench --backends auto` and `gen serve build` then use the
    plan on this host (and say so); a plan measured on another host is ignored with a message. Tune on
    idle cores: a busy host widens the intervals, and an undecided contender never replaces ORT fp32.

    Example:  gen tune bundles/ddpm --n 16 --steps 50
    """
    from gen.runtime.tune import tune as run_tune

    # the numeric options' ranges are checked while parsing (gen.cli.ranges)
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    bad = [b for b in chosen if b not in ("ort", "openvino")]
    if bad or not chosen:
        raise GenError(f"--backends takes ort and/or openvino, got {backends!r}")
    typer.echo(f"tuning {bundle} on this host ({threads or 'all usable'} threads) ...")
    plan = run_tune(bundle, n=n, steps=steps, threads=threads, min_psnr=min_psnr, threshold=threshold,
                    max_seconds=max_seconds, backends=chosen, log=typer.echo)
    typer.echo(f"plan: {plan['path']}")
