"""`gen generate BUNDLE`: images from a bundle on any backend, saved as a PNG grid."""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def generate(
    bundle: Annotated[str, typer.Argument(help="Bundle directory written by `gen export`.")],
    backend: Annotated[str, typer.Option(help="eager (PyTorch) or ort (ONNX Runtime; needs no torch).")] = "ort",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    precision: Annotated[Optional[str], typer.Option(help="fp32 or fp16 (default: the bundle's).")] = None,
    n: Annotated[int, typer.Option(help="Number of images.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same images on every backend.")] = 0,
    steps: Annotated[Optional[int], typer.Option(help="Diffusion steps (default from the bundle).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="Diffusion scheduler: ddpm, ddim, dpm++ or euler.")] = None,
    label: Annotated[Optional[int], typer.Option(help="Class label for conditional models (default: cycle through classes).")] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale (conditional diffusion).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for the backend.")] = None,
    out: Annotated[str, typer.Option(help="PNG grid to write.")] = "grid.png",
) -> None:
    """Generate images and save them as one PNG grid.

    Example:  gen generate bundles/ddpm --backend ort --n 16 --seed 0 --steps 20 --scheduler ddim --out grid.png
    """
    import time

    from gen.images import save_grid
    from gen.runtime.sampler import Sampler

    sampler = Sampler(bundle, backend=backend, device=device, precision=precision, threads=threads)
    t0 = time.perf_counter()
    images = sampler.generate(n=n, seed=seed, steps=steps, scheduler=scheduler, labels=label, guidance=guidance)
    elapsed = time.perf_counter() - t0
    save_grid(out, images)
    d = sampler.backend.describe()
    typer.echo(f"{n} images in {elapsed:.2f} s on {d['backend']} ({d['device']}, {d['precision']}"
               f"{', ' + ','.join(sorted({p for v in d.get('providers', {}).values() for p in v})) if d.get('providers') else ''}) -> {out}")
