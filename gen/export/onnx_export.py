"""`gen export RUN --out BUNDLE`: a trained run -> a parity-checked ONNX bundle.

The bundle is assembled in a temporary sibling directory and renamed into place only after every
component has passed `onnx.checker` (full check) and the eager-vs-ONNX-Runtime parity check, so a
failed export leaves nothing behind and never damages a bundle that was already there. What the
components are, their signatures and the manifest's sampling section come from the family's nets
spec (gen.nets.families); this module knows no family by name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gen.export.defaults import DEFAULT_OPSET, DEFAULT_TOLERANCE
from gen.export.onnx_io import (check_opset, export_precisions, file_entry, precisions_onto, record_weights,
                                refuse_existing, staged_bundle)
from gen.export.variants import check_images, export_checked
from gen.fileio import save_safetensors, write_json
from gen.runtime.manifest import MANIFEST, write_manifest
from gen.versions import versions


def export_run(run_path: str, out: str, precisions=("fp32",), opset: int = DEFAULT_OPSET, force: bool = False,
               tolerance: float = DEFAULT_TOLERANCE, progress=print, int8=None, state: tuple | None = None,
               also_from: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> Path:
    """`precisions` beyond fp32: "fp16" (converted), "int8" and "int8-trt" (calibrated on the bundle's
    own sampling runs and gated, gen.export.int8; `int8` is an Int8Options). `state`: the (config,
    weights) to export instead of the run's own files, e.g. a DDPM run with another run's classifier
    attached (gen.trainkit.families.ddpm.classifier.with_classifier); `also_from`: the runs it was read from
    besides `run_path`, which --force may never replace. Onto a bundle of the same run and weights
    (no --force needed) or with --force, the bundle's other precisions are kept unless in `drop`."""
    from gen.trainkit.rundir import RunDir

    check_opset(opset)
    precisions = export_precisions(precisions, int8)
    out = Path(out)
    sources = (run_path, *also_from)
    run = RunDir(run_path)
    source = _source(run, also_from)
    precisions, force, int8 = precisions_onto(out, precisions, drop, force, int8=int8, progress=progress,
                                              same=lambda m: source is not None and m.source == source)
    refuse_existing(out, force, sources=sources)
    if state is None:
        config, nets, components = run.build_components()
    else:
        from gen.nets.families import get_nets

        config, tensors = state
        nets = get_nets(config["family"])
        components = nets.build(config, tensors)
    sigs = nets.signatures(config)

    with staged_bundle(out, force, sources=sources) as tmp:
        manifest_components, parities = {}, {}
        for name, module in components.items():
            example = _example_fn(sigs[name], config)
            manifest_components[name], parities[name] = export_checked(
                name, module, sigs[name], tmp, opset, example, tolerance, precisions, progress)
        (tmp / "weights").mkdir()
        if state is None:
            shutil.copyfile(run.weights_path, tmp / "weights" / "weights.safetensors")
        else:
            save_safetensors(tmp / "weights" / "weights.safetensors", tensors)
        write_json(tmp / "weights" / "config.json", config)
        manifest = nets.manifest(config, manifest_components, parities, precisions)
        manifest.weights = {"tensors": "weights/weights.safetensors", "config": "weights/config.json"}
        manifest.source = source or _source(run, also_from)
        manifest.export = {"opset": opset}
        manifest.versions = versions(("gen", "torch", "diffusers", "onnx", "onnxruntime"))
        record_weights(tmp, manifest)
        write_manifest(tmp / MANIFEST, manifest)
        check_images(tmp, tmp / MANIFEST, manifest, precisions, progress, int8=int8, n=8, seed=0)
    return out


def _source(run, also_from) -> dict | None:
    """What a bundle records of the run it came from (None before the run has weights)."""
    if not run.weights_path.is_file():
        return None
    source = {"run": str(run.path.resolve()), "weights_sha256": file_entry(run.weights_path)["sha256"]}
    if also_from:
        source["also_from"] = [str(Path(p).resolve()) for p in also_from]
    return source


def _example_fn(sig: dict, config: dict):
    from gen.runtime.validate import example_feeds

    return lambda batch, seed: example_feeds(sig, batch, seed=seed, num_classes=config.get("num_classes", 0),
                                             timesteps=config.get("timesteps", 1000))
