"""A bundle's precision variants, made on the steps of gen.export.onnx_io: each component's converted
files beside its fp32 one (gen.export.precision), checked against fp32; then the whole bundle's images at
each precision against fp32's, and the calibrated variants (gen.export.int8), gated on the same kind of run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.export.onnx_io import (PARITY_BATCH, Example, export_component, file_entry, images_vs_fp32, parity, psnr,
                                session)


def export_checked(name, module, sig, directory: Path, opset, example, tolerance, precisions, progress) -> tuple[dict, dict]:
    """One component: trace, check against eager (refusing the export past `tolerance`), and add
    a converted file for each per-file precision beyond fp32. Returns its manifest entry and its parity record."""
    from gen.runtime.precision import check_precision

    progress(f"exporting {name} ...")
    path = directory / f"{name}.onnx"
    export_component(module, sig, path, opset, example)
    files = {"fp32": file_entry(path)}
    err, ort_out = parity(module, path, example)
    record = {"ort_fp32_vs_eager_max_abs": err}
    progress(f"  {name}: ORT fp32 vs eager max |diff| = {err:.2e}")
    if not err <= tolerance:
        raise GenError(f"{name}: ONNX Runtime output differs from eager by {err:.3g} (> tolerance {tolerance}); nothing was written")
    for precision in precisions:
        if precision == "fp32" or check_precision(precision).calibrated:  # int8 is made from the whole bundle
            continue
        converted, record[f"ort_{precision}_vs_fp32"] = precision_variant(precision, path, example, ort_out)
        files[precision] = file_entry(converted)
        progress(f"  {name}: ORT {precision} vs fp32 = {record[f'ort_{precision}_vs_fp32']}")
    return {**sig, "files": files}, record


def precision_variant(precision: str, fp32: Path, example: Example, fp32_out: np.ndarray) -> tuple[Path, dict]:
    """Convert to `<stem><suffix>.onnx` and measure it against `fp32_out`, the fp32 file's output on
    the parity inputs (so the fp32 model, possibly gigabytes, is not loaded a second time)."""
    from gen.export.precision import converter
    from gen.runtime.precision import check_precision

    out = fp32.with_name(f"{fp32.stem}{check_precision(precision).suffix}.onnx")
    converter(precision)(fp32, out)
    feeds = example(PARITY_BATCH, 1)
    try:
        b = session(out).run(None, feeds)[0]
    except Exception as e:  # onnxruntime's own exception types
        raise GenError(f"the {precision} {out.name} fails in ONNX Runtime: {str(e).splitlines()[0]}") from None
    a = fp32_out
    return out, {"max_abs": float(np.abs(a - b).max()), "psnr_db": psnr(a, b, peak=float(np.abs(a).max()) or 1.0)}


def check_images(tmp: Path, manifest_path: Path, manifest, precisions, progress, int8=None, **generate_kwargs) -> None:
    """Record each converted precision's end-to-end images against fp32 in the staged bundle's
    manifest, then make the calibrated (int8) variants asked for, gated on the same kind of run."""
    from gen.runtime.manifest import write_manifest
    from gen.runtime.precision import check_precision

    others = [p for p in precisions if p != "fp32" and not check_precision(p).calibrated]
    for precision in others:
        record = images_vs_fp32(tmp, precision, **generate_kwargs)
        manifest.parity[f"images_{precision}_vs_fp32"] = record
        progress(f"  images {precision} vs fp32: {record['psnr_db']} dB PSNR")
    if others:
        write_manifest(manifest_path, manifest)
    calibrated = [p for p in precisions if check_precision(p).calibrated]
    if calibrated:
        import dataclasses

        from gen.export.int8 import Int8Options, quantize_bundle

        options = dataclasses.replace(int8 or Int8Options(), gate_images=generate_kwargs)
        quantize_bundle(tmp, manifest, options, calibrated, progress)
