"""`gen export RUN --out BUNDLE`: a trained run -> a parity-checked ONNX bundle.

The bundle is assembled in a temporary sibling directory and renamed into place only after every
component has passed `onnx.checker` (full check) and the eager-vs-ONNX-Runtime parity check, so a
failed export leaves nothing behind and never damages a bundle that was already there.
"""

from __future__ import annotations

import shutil
from pathlib import Path


from gen.errors import GenError
from gen.export.onnx_io import (DEFAULT_OPSET, DEFAULT_TOLERANCE, check_opset, export_checked, file_entry,
                                images_fp16_vs_fp32, refuse_existing, staged_bundle)
from gen.fileio import write_json
from gen.runtime.bundle import MANIFEST, SCHEMA_VERSION
from gen.versions import versions


def export_run(run_path: str, out: str, fp16: bool = False, opset: int = DEFAULT_OPSET, force: bool = False,
               tolerance: float = DEFAULT_TOLERANCE, progress=print) -> Path:
    from gen.nets.components import build_components, signatures
    from gen.trainkit.rundir import RunDir

    check_opset(opset)
    out = Path(out)
    refuse_existing(out, force)
    run = RunDir(run_path)
    config = run.read_config()
    tensors = run.load_weights()
    try:
        components = build_components(config, tensors)
    except RuntimeError as e:
        raise GenError(f"{run.weights_path} does not match {run.config_path}: {str(e).splitlines()[0]}") from None
    sigs = signatures(config)

    with staged_bundle(out, force) as tmp:
        manifest_components, parities = {}, {}
        for name, module in components.items():
            example = _example_fn(sigs[name], config)
            manifest_components[name], parities[name] = export_checked(
                name, module, sigs[name], tmp, opset, example, tolerance, fp16, progress)
        (tmp / "weights").mkdir()
        shutil.copyfile(run.weights_path, tmp / "weights" / "weights.safetensors")
        write_json(tmp / "weights" / "config.json", config)
        manifest = _manifest(config, run, manifest_components, parities, fp16, opset)
        write_json(tmp / MANIFEST, manifest)
        if fp16:
            manifest["parity"]["images_fp16_vs_fp32"] = images_fp16_vs_fp32(tmp, n=8, seed=0)
            write_json(tmp / MANIFEST, manifest)
    return out


def _example_fn(sig: dict, config: dict):
    from gen.runtime.validate import example_feeds

    return lambda batch, seed: example_feeds(sig, batch, seed=seed, num_classes=config.get("num_classes", 0),
                                             timesteps=config.get("timesteps", 1000))


def _manifest(config, run, components, parity, fp16, opset) -> dict:
    family = config["family"]
    from gen.nets.components import is_conditional

    conditional = is_conditional(config)
    sampling: dict = {}
    if family == "gan":
        sampling = {"z_dim": config["z_dim"]}
    elif family == "vae":
        sampling = {"latent_dim": config["latent_dim"]}
    elif family == "ddpm":
        from gen.trainkit.families.ddpm import noise_scheduler

        sched = dict(noise_scheduler(config).config)
        keys = ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type", "clip_sample", "clip_sample_range")
        sampling = {
            "scheduler_config": {**{k: sched[k] for k in keys}, "timestep_spacing": "trailing"},
            "default_scheduler": "ddim", "default_steps": config["sample_steps"], "guidance": config["guidance"],
            "null_label": config["num_classes"] if conditional else None,
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "format": "gen-bundle",
        "family": family,
        "components": components,
        "sampling": sampling,
        "conditioning": {"num_classes": config["num_classes"] if conditional else 0,
                         "class_names": config.get("class_names", []) if conditional else []},
        "image": {"channels": config["channels"], "height": config["image_size"], "width": config["image_size"],
                  "range": [-1.0, 1.0], "layout": "NCHW"},
        "precision": "fp16" if fp16 else "fp32",
        "parity": parity,
        "weights": {"tensors": "weights/weights.safetensors", "config": "weights/config.json"},
        "source": {"run": str(run.path.resolve()), "weights_sha256": file_entry(run.weights_path)["sha256"]},
        "export": {"opset": opset},
        "versions": versions(("gen", "torch", "diffusers", "onnx", "onnxruntime")),
    }
