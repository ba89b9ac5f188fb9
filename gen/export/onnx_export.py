"""`gen export RUN --out BUNDLE`: a trained run -> a parity-checked ONNX bundle.

The bundle is assembled in a temporary sibling directory and renamed into place only after every
component has passed `onnx.checker` (full check) and the eager-vs-ONNX-Runtime parity check, so a
failed export leaves nothing behind and never damages a bundle that was already there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.fileio import replace_dir, write_json
from gen.runtime.bundle import MANIFEST, SCHEMA_VERSION
from gen.versions import versions

DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-3
PARITY_BATCH = 3
TWO_GB = 2**31


def export_run(run_path: str, out: str, fp16: bool = False, opset: int = DEFAULT_OPSET, force: bool = False,
               tolerance: float = DEFAULT_TOLERANCE, progress=print) -> Path:
    import torch

    from gen.nets.components import build_components, signatures
    from gen.trainkit.rundir import RunDir

    if not 13 <= opset <= 21:
        raise GenError(f"--opset must be between 13 and 21, got {opset}")
    out = Path(out)
    if out.exists() and not force:
        raise GenError(f"--out {out} already exists; pass --force to replace it")
    run = RunDir(run_path)
    config = run.read_config()
    tensors = run.load_weights()
    try:
        components = build_components(config, tensors)
    except RuntimeError as e:
        raise GenError(f"{run.weights_path} does not match {run.config_path}: {str(e).splitlines()[0]}") from None
    sigs = signatures(config)

    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest_components, parity = {}, {}
        for name, module in components.items():
            progress(f"exporting {name} ...")
            path = tmp / f"{name}.onnx"
            _export_component(module, sigs[name], path, opset, config)
            files = {"fp32": _file_entry(path)}
            err = _parity(module, sigs[name], path, config)
            parity[name] = {"ort_fp32_vs_eager_max_abs": err}
            progress(f"  {name}: ORT fp32 vs eager max |diff| = {err:.2e}")
            if not err <= tolerance:
                raise GenError(f"{name}: ONNX Runtime output differs from eager by {err:.3g} (> tolerance {tolerance}); nothing was written")
            if fp16:
                from gen.export.precision import convert_fp16

                half = tmp / f"{name}.fp16.onnx"
                convert_fp16(path, half)
                files["fp16"] = _file_entry(half)
                parity[name]["ort_fp16_vs_fp32"] = _fp16_parity(path, half, sigs[name], config)
                progress(f"  {name}: ORT fp16 vs fp32 = {parity[name]['ort_fp16_vs_fp32']}")
            manifest_components[name] = {**sigs[name], "files": files}
        (tmp / "weights").mkdir()
        shutil.copyfile(run.weights_path, tmp / "weights" / "weights.safetensors")
        write_json(tmp / "weights" / "config.json", config)
        manifest = _manifest(config, run, manifest_components, parity, fp16, opset, torch.__version__)
        write_json(tmp / MANIFEST, manifest)
        if fp16:
            manifest["parity"]["images_fp16_vs_fp32"] = _image_psnr(tmp)
            write_json(tmp / MANIFEST, manifest)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _export_component(module, sig: dict, path: Path, opset: int, config: dict) -> None:
    import onnx

    inputs = _examples(sig, config, batch=2, seed=0)
    in_names = [s["name"] for s in sig["inputs"]]
    out_names = [s["name"] for s in sig["outputs"]]
    axes = {n: {0: "batch"} for n in in_names + out_names}
    try:
        _trace_to_onnx(module, inputs, in_names, out_names, axes, path, opset)
    except Exception as e:  # torch's exporter raises many types; the message is what helps
        raise GenError(f"torch.onnx.export failed for {path.stem}: {str(e).splitlines()[0]}") from None
    model = onnx.load(str(path))
    if model.ByteSize() > TWO_GB - 2**20:  # protobuf's 2 GB limit: move weights to external data
        onnx.save_model(model, str(path), save_as_external_data=True, location=f"{path.name}.data")
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise GenError(f"onnx.checker rejects the exported {path.name}: {str(e).splitlines()[0]}") from None


def _trace_to_onnx(module, inputs, in_names, out_names, axes, path, opset) -> None:
    import torch

    # The tracer warns about Python-level shape branches in diffusers; the parity check runs the
    # exported graph at a different batch size than the trace, which is the check that matters.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # dynamo=False on purpose: the TorchScript exporter handles diffusers' UNets without onnxscript
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(module, tuple(torch.from_numpy(inputs[n]) for n in in_names), str(path), input_names=in_names,
                          output_names=out_names, dynamic_axes=axes, opset_version=opset, dynamo=False,
                          do_constant_folding=True)


def _examples(sig: dict, config: dict, batch: int, seed: int) -> dict:
    from gen.runtime.validate import example_feeds

    return example_feeds(sig, batch, seed=seed, num_classes=config.get("num_classes", 0),
                         timesteps=config.get("timesteps", 1000))


def _file_entry(path: Path) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"path": path.name, "bytes": path.stat().st_size, "sha256": h.hexdigest()}


def _session(path: Path):
    from gen.runtime.ort_session import ort_session

    try:
        return ort_session(path)
    except Exception as e:  # onnxruntime's own exception types
        raise GenError(f"ONNX Runtime cannot load the exported {path.name}: {str(e).splitlines()[0]}") from None


def _parity(module, sig, path, config) -> float:
    import torch

    feeds = _examples(sig, config, batch=PARITY_BATCH, seed=1)
    with torch.no_grad():
        ref = module(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    try:
        got = _session(path).run(None, feeds)[0]
    except Exception as e:  # onnxruntime's own exception types
        raise GenError(f"the exported {path.stem} fails in ONNX Runtime at batch {PARITY_BATCH}: {str(e).splitlines()[0]}") from None
    return float(np.abs(ref - got).max())


def _fp16_parity(fp32: Path, fp16: Path, sig, config) -> dict:
    feeds = _examples(sig, config, batch=PARITY_BATCH, seed=1)
    a = _session(fp32).run(None, feeds)[0]
    half = _session(fp16)
    try:
        b = half.run(None, feeds)[0]
    except Exception as e:  # onnxruntime's own exception types
        raise GenError(f"the fp16 {fp16.name} fails in ONNX Runtime: {str(e).splitlines()[0]}") from None
    return {"max_abs": float(np.abs(a - b).max()), "psnr_db": psnr(a, b, peak=float(np.abs(a).max()) or 1.0)}


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 2.0) -> float:
    """PSNR in dB; `peak` is the signal's range (2 for images in [-1, 1])."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def _image_psnr(bundle_dir: Path) -> dict:
    """End-to-end: the same seed through ORT fp32 and fp16, the way users will compare them."""
    from gen.runtime.sampler import Sampler

    a = Sampler(str(bundle_dir), backend="ort", precision="fp32").generate(n=8, seed=0)
    b = Sampler(str(bundle_dir), backend="ort", precision="fp16").generate(n=8, seed=0)
    return {"psnr_db": round(psnr(a, b), 2), "max_abs": float(np.abs(a - b).max()), "n": 8, "seed": 0}


def _manifest(config, run, components, parity, fp16, opset, torch_version) -> dict:
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
        "source": {"run": str(run.path.resolve()), "weights_sha256": _file_entry(run.weights_path)["sha256"]},
        "export": {"opset": opset},
        "versions": versions(("gen", "torch", "diffusers", "onnx", "onnxruntime")),
    }
