"""`gen bench BUNDLE`: side-by-side latency of backends and precisions, as a table, JSON and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gen.cli.options import BACKENDS_HELP, command_line, given_options, require_bundle_or_url
from gen.errors import GenError
from gen.runtime.defaults import BENCH_REPEATS, BENCH_WARMUP


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GenError(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise GenError(f"{option} values must be >= 1, got {text!r}")
    return list(dict.fromkeys(values))  # 1,1 is one configuration, timed once


def bench(
    ctx: typer.Context,
    bundle: Annotated[Optional[str], typer.Argument(help="Bundle directory written by `gen export` (or use --url).")] = None,
    url: Annotated[Optional[str], typer.Option(help="Benchmark a served model instead: http://HOST:PORT or grpc://HOST:PORT.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Pipeline model name on the server (with --url).")] = None,
    concurrency: Annotated[str, typer.Option(help="With --url: comma-separated concurrent client counts.")] = "1,4,8",
    requests: Annotated[int, typer.Option(help="With --url: requests per concurrency level.")] = 100,
    image: Annotated[Optional[str], typer.Option(help="With --url: the input image every request sends, for an image-to-image model (pix2pix, CycleGAN; a local bundle uses a mid-gray image at its size).")] = None,
    backends: Annotated[str, typer.Option(help=f"Comma-separated backends: {BACKENDS_HELP}.")] = "eager,ort",
    precisions: Annotated[str, typer.Option(help="Comma-separated precisions: fp32, fp16, int8, int8-trt (those the bundle was exported with; eager runs fp32 on cpu, others are skipped with the reason).")] = "fp32",
    steps: Annotated[Optional[str], typer.Option(help="Comma-separated diffusion step counts (default 1,10,50; with --url, the model's default).")] = None,
    batch: Annotated[Optional[str], typer.Option(help="Comma-separated batch sizes (default 1,16; with --url, one value, default 1).")] = None,
    repeats: Annotated[int, typer.Option(help="Timed runs per configuration (after warm-up).")] = BENCH_REPEATS,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs per configuration (at least one runs: its first call also measures its peak memory). The configurations are then timed in alternating rounds.")] = BENCH_WARMUP,
    threads: Annotated[Optional[int], typer.Option(help="Threads for every backend (default: all cores, fewer while other jobs share them, as gen generate runs; give a count to pin it).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the full results here.")] = None,
    plot_out: Annotated[Optional[str], typer.Option("--plot", help="Write a PNG bar chart here (default: beside --json).")] = None,
    force: Annotated[bool, typer.Option(help="Let --json / --plot replace an existing file gen did not write.")] = False,
) -> None:
    """Median and p95 latency per component and end to end, images/s, sampler overhead, speed-ups vs eager.

    Examples:  gen bench bundles/ddpm --backends eager,ort --steps 50 --batch 16 --json results.json
               gen bench --url http://127.0.0.1:8000 --model ddpm --concurrency 1,4,8 --requests 200 --steps 50 --batch 1
               gen bench --url grpc://127.0.0.1:8001 --model colorize --image gray.png --requests 100
    """
    from gen.fileio import json_bytes
    from gen.images import written_by_gen
    from gen.outputs import check_output_file, gen_json, write_output
    from gen.runtime.bench import plot, run_bench, speedups

    require_bundle_or_url(bundle, url, model, given_options(ctx, ("backends", "precisions", "threads", "device", "repeats", "warmup", "plot_out")),
                          given_options(ctx, ("model", "concurrency", "requests", "image")))
    if plot_out and Path(plot_out).suffix.lower() != ".png":
        raise GenError(f"--plot {plot_out}: the plot is a PNG; give a .png file name")
    if json_out is not None and not url:
        plot_out = plot_out or str(Path(json_out).with_suffix(".png"))  # the default plot goes beside the JSON
    inputs = (bundle, image)
    if json_out is not None:  # every output checked before anything is measured
        check_output_file(json_out, "--json", gen_json, force, inputs)
    if plot_out is not None:
        check_output_file(plot_out, "--plot" if given_options(ctx, ("plot_out",)) else f"--plot (beside --json: {plot_out})",
                          written_by_gen, force, inputs)
    if url:
        return _load_test(url, model, concurrency, requests, steps, batch, image, json_out)
    result = run_bench(bundle, [b.strip() for b in backends.split(",") if b.strip()],
                       [p.strip() for p in precisions.split(",") if p.strip()],
                       _ints(steps, "--steps") if steps else None, _ints(batch or "1,16", "--batch"), warmup, repeats, threads, device, log=typer.echo)
    if not result["rows"]:  # a results file and plot of nothing would only look like a measurement
        raise GenError("nothing was measured: every configuration was skipped (the reasons are above); nothing was "
                       "written. Choose --backends / --precisions / --steps this bundle and machine run, e.g. "
                       "--backends ort --precisions fp32")
    result["command"] = command_line()
    result["speedups"] = speedups(result)
    for s in result["speedups"]:
        ratio = next(v for k, v in s.items() if k.startswith("speedup"))
        at_steps = f" steps {s['steps']}" if s.get("steps") is not None else ""
        typer.echo(f"{s['backend']}/{s['precision']} batch {s['batch']}{at_steps}: {ratio:.2f}x eager")
    if json_out:
        write_output(json_out, json_bytes(result), "--json")
        typer.echo(f"results: {json_out}")
    if plot_out:
        typer.echo(f"plot: {plot_out}" if plot(result, plot_out) else "plot skipped: matplotlib is not installed")
    if not json_out:
        typer.echo("(--json FILE keeps every figure: per-component percentiles, images/s, the machine)")


def _load_test(url: str, model, concurrency: str, requests: int, steps, batch, image, json_out) -> None:
    """`gen bench --url`: a served model under --concurrency clients (gen.serving.loadtest)."""
    from gen.fileio import json_bytes
    from gen.outputs import write_output
    from gen.serving.loadtest import run_load

    step_list, batch_list = (_ints(steps, "--steps") if steps else [None]), _ints(batch or "1", "--batch")
    if len(step_list) > 1 or len(batch_list) > 1:
        raise GenError("with --url, give one --steps and one --batch value (a load test sweeps --concurrency only)")
    extra = {}
    if image:
        from gen.runtime.image_input import as_uint8_nhwc

        extra["image"] = as_uint8_nhwc(image, "--image")
    rows = run_load(url, model, _ints(concurrency, "--concurrency"), requests, n=batch_list[0],
                    steps=step_list[0], log=typer.echo, **extra)
    result = {"url": url, "model": model, "rows": rows, "command": command_line()}
    if json_out:
        write_output(json_out, json_bytes(result), "--json")
        typer.echo(f"results: {json_out}")
