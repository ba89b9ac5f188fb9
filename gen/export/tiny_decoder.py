"""`gen export BUNDLE --tiny-decoder RUN`: a distilled tiny decoder (`gen distill decoder`) added onto
the bundle it was distilled from, as the optional component `tiny_decoder` with vae_decoder's signature.

Onto the existing bundle, not a re-export: the tiny decoder is made from that very bundle's decoder
(the run records the teacher file's sha256, and a bundle whose vae_decoder differs is refused), and
re-exporting a Stable Diffusion bundle means tracing its UNet again and redoing int8's calibration
and gate, minutes to hours of work that would change nothing. The new files are written first, then
gen.json is replaced atomically, so a failure leaves the bundle as it was (its new files removed).

    BUNDLE/tiny_decoder.onnx            (and tiny_decoder.fp16.onnx where the bundle has fp16)
    BUNDLE/tiny_decoder/                 the eager backend's weights (safetensors) and config
    gen.json components.tiny_decoder    files hash-checked like every component; a calibrated precision
                                        (int8) runs the fp32 file, as vae_encoder's does
    gen.json parity.tiny_decoder        held-out PSNR against vae_decoder, parameter counts, ORT vs eager,
                                        and one sampling run decoded both ways
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.export.defaults import DEFAULT_OPSET, DEFAULT_TOLERANCE

COMPONENT, TEACHER, FOLDER = "tiny_decoder", "vae_decoder", "tiny_decoder"
RUN_FAMILY = "tiny-decoder"  # what `gen distill decoder` writes in its config.json


def add_tiny_decoder(bundle_dir: str, run_dir: str, opset: int = DEFAULT_OPSET, tolerance: float = DEFAULT_TOLERANCE,
                     force: bool = False, progress=print) -> dict:
    """Add (with `force`, replace) the bundle's tiny decoder; returns its parity record."""
    from gen.export.onnx_io import check_opset
    from gen.outputs import output_lock
    from gen.runtime.bundle import load_bundle

    check_opset(opset)
    bundle = load_bundle(bundle_dir)
    config, tensors = read_run(run_dir, bundle)
    if COMPONENT in bundle.components and not force:
        raise GenError(f"{bundle_dir} already has a tiny decoder; pass --force to replace it with {run_dir}", "force")
    from gen.fileio import write_bytes
    from gen.runtime.manifest import MANIFEST

    with output_lock(Path(bundle_dir)):
        bundle = load_bundle(bundle_dir)  # as it is now, under the lock
        before = (bundle.path / MANIFEST).read_bytes()
        written: list[Path] = []
        try:
            record = _write(bundle, config, tensors, Path(run_dir), opset, tolerance, written, progress)
        except BaseException:  # the bundle as it was: its manifest, and none of the new files
            write_bytes(bundle.path / MANIFEST, before)
            for p in written:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            raise
    return record


def read_run(run_dir: str, bundle):
    """The run's config and weights, checked against the bundle it is to join."""
    from gen.fileio import load_safetensors, read_json

    path = Path(run_dir)
    if not (path / "config.json").is_file():
        raise GenError(f"--tiny-decoder {run_dir} is not a run of `gen distill decoder` (no config.json)", "tiny_decoder")
    config = read_json(path / "config.json", "run config")
    if not isinstance(config, dict) or config.get("family") != RUN_FAMILY:
        raise GenError(f"--tiny-decoder {run_dir} is not a run of `gen distill decoder` (its family is "
                       f"{config.get('family') if isinstance(config, dict) else None!r})", "tiny_decoder")
    if not (path / "weights.safetensors").is_file():
        raise GenError(f"--tiny-decoder {run_dir} has no weights.safetensors: let `gen distill decoder` finish", "tiny_decoder")
    if TEACHER not in bundle.components:
        raise GenError(f"{bundle.path} has no {TEACHER!r}: a tiny decoder joins a latent diffusion bundle", "bundle")
    teacher = bundle.components[TEACHER].files["fp32"].sha256
    if config.get("teacher_sha256") != teacher:
        raise GenError(f"--tiny-decoder {run_dir} was distilled from another decoder than {bundle.path}'s {TEACHER} "
                       f"(sha256 {str(config.get('teacher_sha256'))[:12]}.. vs {teacher[:12]}..): distil one from this "
                       f"bundle with `gen distill decoder {bundle.path} --out RUN`", "tiny_decoder")
    tensors, _ = load_safetensors(path / "weights.safetensors")
    return config, tensors


def _write(bundle, config, tensors, run_dir: Path, opset, tolerance, written, progress) -> dict:
    from gen.export.variants import export_checked
    from gen.nets.tiny_decoder import build
    from gen.runtime.manifest import MANIFEST, Component, parse, write_manifest
    from gen.runtime.precision import check_precision

    net = build(config)
    try:
        net.load_state_dict(tensors)
    except RuntimeError as e:
        raise GenError(f"{run_dir}/weights.safetensors does not match its config.json: {str(e).splitlines()[0]}") from None
    net.eval().requires_grad_(False)
    sig = bundle.signature(TEACHER)
    have = sorted({p for c in bundle.components.values() for p in c.files})
    per_file = [p for p in have if not check_precision(p).calibrated]
    written += [bundle.path / f"{COMPONENT}{check_precision(p).suffix}.onnx" for p in per_file]
    entry, parity = export_checked(COMPONENT, net, sig, bundle.path, opset, _example(bundle, sig), tolerance,
                                   per_file, progress)
    for p in have:  # a calibrated precision (int8) runs the float file: the tiny decoder is already cheap
        entry["files"].setdefault(p, entry["files"]["fp32"])
    written.append(bundle.path / FOLDER)
    manifest = bundle.manifest
    manifest.weights[COMPONENT] = FOLDER
    manifest.weights_files = [f for f in manifest.weights_files or () if not f.path.startswith(f"{FOLDER}/")] \
        + _save_weights(bundle.path / FOLDER, tensors, config)
    manifest.components[COMPONENT] = parse(Component, entry, f"components.{COMPONENT}")
    parity.update(held_out(config), vae_decoder_params=onnx_params(bundle.onnx_path(TEACHER)))
    manifest.parity[COMPONENT] = parity
    manifest.source[COMPONENT] = {"run": str(run_dir.resolve()), "steps": config.get("steps"),
                                  "sha256": _sha(run_dir / "weights.safetensors")}
    write_manifest(bundle.path / MANIFEST, manifest)
    parity["images_tiny_vs_full"] = images_tiny_vs_full(bundle.path)
    write_manifest(bundle.path / MANIFEST, manifest)
    progress(f"  tiny decoder: {parity['params']} parameters ({parity['params'] / parity['vae_decoder_params']:.1%} of "
             f"vae_decoder's), held-out PSNR {parity['psnr_db_vs_vae_decoder']} dB; one sampling run decoded both ways "
             f"{parity['images_tiny_vs_full']['psnr_db']} dB")
    return parity


def held_out(config: dict) -> dict:
    """What the run measured on latents its training never saw."""
    keys = {"psnr_db": "psnr_db_vs_vae_decoder", "psnr_db_mean_image": "psnr_db_mean_image_vs_vae_decoder",
            "held_out_latents": "held_out_latents", "params": "params", "sampled_latents": "sampled_latents",
            "encoded_latents": "encoded_latents"}
    return {new: config[old] for old, new in keys.items() if old in config}


def _example(bundle, sig):
    from gen.runtime.validate import example_feeds

    f = bundle.sampling.vae_scale_factor
    h, w = bundle.image.height // f, bundle.image.width // f

    def example(batch, seed):  # native size, then one latent wider: H and W stay dynamic
        dims = {"latent_height": h, "latent_width": w + seed, "height": h * f, "width": (w + seed) * f}
        return example_feeds(sig, batch, seed=seed, dims=dims)
    return example


def _save_weights(folder: Path, tensors: dict, config: dict) -> list:
    """The eager backend's copy: weights and the config that builds the net, with their hashes."""
    from gen.cache import sha256_of
    from gen.fileio import save_safetensors, write_json
    from gen.runtime.manifest import ModelFile

    folder.mkdir(exist_ok=True)
    keep = ("family", "latent_channels", "widths", "blocks", "scale", "vae_scale_factor", "teacher_sha256")
    save_safetensors(folder / "weights.safetensors", tensors, {"format": "gen-weights/1", "family": RUN_FAMILY})
    write_json(folder / "config.json", {k: config[k] for k in keep if k in config})
    return [ModelFile(path=f"{folder.name}/{p.name}", bytes=p.stat().st_size, sha256=sha256_of(p))
            for p in sorted(folder.iterdir())]


def _sha(path: Path) -> str:
    from gen.cache import sha256_of

    return sha256_of(path)


def onnx_params(path: Path) -> int:
    """Weights in an ONNX file (its initializers' elements)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(sum(np.prod(t.dims, dtype=np.int64) for t in model.graph.initializer))


def images_tiny_vs_full(bundle_dir: Path, steps: int = 4) -> dict:
    """One sampling run (ORT fp32, seed 0), its latents decoded by both decoders: the PSNR a user sees."""
    from gen.runtime.host import usable_cores
    from gen.runtime.quality import psnr
    from gen.runtime.sampler import Sampler

    prompt = "a red house by a lake"
    with Sampler(str(bundle_dir), backend="ort", precision="fp32", threads=usable_cores()) as s:
        full = s.generate(prompt, n=1, seed=0, steps=steps)
        tiny = s.generate(prompt, n=1, seed=0, steps=steps, decoder="tiny")
    return {"psnr_db": round(psnr(full, tiny), 2), "max_abs": float(np.abs(full - tiny).max()), "prompt": prompt,
            "seed": 0, "steps": steps}
