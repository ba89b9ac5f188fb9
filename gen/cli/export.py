"""`gen export RUN --out BUNDLE`: write a parity-checked ONNX bundle from a trained run."""

from __future__ import annotations

from typing import Annotated

import typer


def export(
    run: Annotated[str, typer.Argument(help="Run directory written by `gen train`.")],
    out: Annotated[str, typer.Option(help="Bundle directory to write (gen.json + one .onnx per component + weights/).")] = "",
    fp16: Annotated[bool, typer.Option(help="Also write fp16 components (fp32 inputs/outputs kept) and record fp16-vs-fp32 parity.")] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    tolerance: Annotated[float, typer.Option(help="Largest eager-vs-ONNX Runtime difference accepted (max abs).")] = 1e-3,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle at --out.")] = False,
) -> None:
    """Export a run to ONNX, check it with onnx.checker and against eager, and write a bundle.

    Example:  gen export runs/ddpm --out bundles/ddpm --fp16
    """
    from pathlib import Path

    from gen.export.onnx_export import export_run

    out = out or str(Path("bundles") / Path(run).resolve().name)
    path = export_run(run, out, fp16=fp16, opset=opset, force=force, tolerance=tolerance, progress=typer.echo)
    typer.echo(f"bundle written to {path}  (try: gen generate {path} --backend ort --n 16 --out grid.png)")
