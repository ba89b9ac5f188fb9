"""The steps every export shares: trace a component to ONNX, check it, compare it with eager, record
its files, compare a bundle's images across precisions, and assemble the bundle directory atomically.
Making the precision variants (fp16, int8) from these is gen.export.variants, one layer up.

`example(batch, seed) -> feeds` supplies inputs that satisfy the component's signature; parity runs
at a different batch size than the trace, which is what catches a batch axis baked into the graph.
"""

from __future__ import annotations

import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from gen.errors import GenError
from gen.outputs import check_replaceable, output_lock, refuse_foreign, staged_dir
from gen.runtime.manifest import MANIFEST
from gen.runtime.plan import PLANS
from gen.runtime.quality import psnr  # noqa: F401  (export, int8 and the tests judge images by it)

from gen.export.defaults import OPSETS

TRACE_BATCH, PARITY_BATCH = 2, 3
EXTERNAL_DATA_ABOVE = 2**31 - 2**26  # protobuf cannot serialise a model of 2 GB; keep a margin

Example = Callable[[int, int], dict]
UNREADABLE = f"{MANIFEST} (not a gen bundle manifest)"  # what a --force export finds in place of a manifest


def refuse_existing(out: Path, force: bool, sources=()) -> None:
    """Called before any slow work, and again under the lock: an existing bundle needs --force, and
    --force replaces only a bundle (never a user's folder, never the export's own input)."""
    check_replaceable(out, (MANIFEST,), "bundle", force, sources)
    if force and (out / MANIFEST).is_file():
        foreign = _not_written_by_gen(out)
        if foreign[:1] == [UNREADABLE]:  # damaged, or someone else's: nothing there can be told to be gen's
            raise GenError(f"--force: {out} holds {UNREADABLE}, which gen did not write or which was damaged, so gen "
                           "cannot tell which of its files are gen's and replaces none. If it is a bundle gen exported, "
                           f"remove it yourself (rm -r {out}) and run this export again; otherwise choose another --out")
        refuse_foreign(out, foreign)


def gen_manifest(out: Path):
    """The manifest of the gen bundle at `out`, or None: no gen.json, or someone else's (the file name
    alone proves nothing)."""
    from gen.fileio import read_json
    from gen.runtime.manifest import FORMAT, read_manifest

    try:
        data = read_json(out / MANIFEST, "bundle manifest")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        return read_manifest(data, str(out / MANIFEST))
    except GenError:
        return None


def precisions_onto(out: Path, precisions, drop=(), force: bool = False, same=None, int8=None, progress=print):
    """An export onto the gen bundle already at `out` keeps the precisions it has: they are made again
    from this source beside the requested ones, unless named in `drop` (--no-fp16, ...). It may
    replace the bundle with --force, or without when `same(manifest)` says the bundle came from this
    very source and a precision is added (then nothing is lost). A kept int8 is calibrated with the options
    the bundle records, unless int8 was asked for. Returns (precisions, may replace, int8 options)."""
    from gen.runtime.precision import PRECISIONS, check_precision

    manifest = gen_manifest(out) if (out / MANIFEST).is_file() else None
    had = () if manifest is None else tuple(p for p in PRECISIONS if any(p in c.files for c in manifest.components.values()))
    adds = any(p not in had for p in precisions)
    if manifest is None or not (force or (adds and same is not None and same(manifest))):
        return precisions, force, int8  # nothing there, or refuse_existing asks for --force
    kept = tuple(p for p in had if p not in precisions and p not in drop)
    dropped = tuple(p for p in had if p not in precisions and p in drop)
    if any(check_precision(p).calibrated for p in kept) and not any(check_precision(p).calibrated for p in precisions):
        int8 = recorded_int8(manifest)
    added = tuple(p for p in precisions if p not in had)
    what = "replacing" if force else "adding " + (", ".join(added) or "nothing new") + " to"
    if kept or dropped or not force:
        progress(f"{what} the bundle in {out} ({', '.join(had)}): "
                 + (f"keeping {', '.join(kept)}, made again from this source (--no-{' --no-'.join(kept)} "
                    "leaves it out)" if kept else "keeping no other precision")
                 + (f"; dropping {', '.join(dropped)} as asked" if dropped else ""))
    return export_precisions((*precisions, *kept), int8), True, int8


def recorded_int8(manifest):
    """The int8 options a bundle was calibrated with (gen.json's export.int8), to make it again alike."""
    from gen.export.int8_options import Int8Options

    r = (manifest.export or {}).get("int8") or {}
    base = Int8Options()
    return Int8Options(calibration=r.get("calibration_images"), method=r.get("method", base.method),
                       groups=tuple(r.get("groups", ())), exclude=tuple(r.get("exclude", ())),
                       min_psnr=r.get("min_psnr_db", base.min_psnr), min_speedup=r.get("min_speedup", base.min_speedup))


def _not_written_by_gen(out: Path) -> list[str]:
    """What a bundle folder holds beyond its manifest's files (top-level names), or ["gen.json (not a gen
    bundle manifest)"] when gen.json is someone else's."""
    manifest = gen_manifest(out)
    if manifest is None:
        return [UNREADABLE]
    named = [f.path for c in manifest.components.values() for f in c.files.values()]
    named += [f.external_data.path for c in manifest.components.values() for f in c.files.values() if f.external_data]
    named += list(manifest.weights.values()) + [f.path for f in manifest.weights_files or ()]
    named += [manifest.text.tokenizer] if manifest.text else []
    # trt/: gen export BUNDLE --trt's engines; plans/: gen tune's per-host plans (stale once re-exported);
    # optimize/: gen optimize's report; loras/: adapters added with gen lora add (gen.runtime.loras)
    ours = {MANIFEST, "trt", PLANS, "optimize", "loras"} | {Path(p).parts[0] for p in named}
    return sorted(e.name for e in out.iterdir() if e.name not in ours)


@contextmanager
def staged_bundle(out: Path, force: bool, sources=()) -> Iterator[Path]:
    """A temporary sibling of `out` to build in, under out's lock; it replaces `out` only if the
    block succeeds."""
    with output_lock(out):
        refuse_existing(out, force, sources)
        with staged_dir(out, "export") as tmp:
            yield tmp


def check_opset(opset: int) -> None:
    if not OPSETS[0] <= opset <= OPSETS[1]:
        raise GenError(f"--opset must be between {OPSETS[0]} and {OPSETS[1]}, got {opset}")


def export_precisions(precisions, int8=None) -> tuple[str, ...]:
    """The precision variants to write; fp32 always, first: it is the reference the others are checked
    against. The int8 options (gen.export.int8_options) are checked here too, before any slow work."""
    from gen.runtime.precision import check_precision

    names = tuple(dict.fromkeys(("fp32", *precisions)))
    if any(check_precision(p).calibrated for p in names):
        from gen.export.int8_options import Int8Options

        (int8 or Int8Options()).check()
    return names


def export_component(module, sig: dict, path: Path, opset: int, example: Example) -> None:
    """Trace `module` to `path` with every named (string) dimension of `sig` dynamic, then run the
    full onnx.checker. Models near protobuf's 2 GB limit get their weights in `<name>.data`."""
    import onnx

    inputs = example(TRACE_BATCH, 0)
    in_names = [s["name"] for s in sig["inputs"]]
    out_names = [s["name"] for s in sig["outputs"]]
    axes = {s["name"]: {i: d for i, d in enumerate(s["shape"]) if isinstance(d, str)} for s in sig["inputs"] + sig["outputs"]}
    trace_dir = path.parent / f".{path.stem}-trace"  # the exporter scatters large weights as one file each
    trace_dir.mkdir()
    try:
        try:
            _trace_to_onnx(module, inputs, in_names, out_names, axes, trace_dir / path.name, opset)
        except Exception as e:  # torch's exporter raises many types; the message is what helps
            raise GenError(f"torch.onnx.export failed for {path.stem}: {str(e).splitlines()[0]}") from None
        save_onnx(onnx.load(str(trace_dir / path.name)), path)
    finally:
        shutil.rmtree(trace_dir, ignore_errors=True)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise GenError(f"onnx.checker rejects the exported {path.name}: {str(e).splitlines()[0]}") from None


def save_onnx(model, path: Path) -> None:
    """One .onnx file, plus one `<file>.data` holding the weights when the model is too big for protobuf."""
    import onnx

    weights = sum(len(t.raw_data) for t in model.graph.initializer)
    if weights > EXTERNAL_DATA_ABOVE:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}.data", size_threshold=1024)
        # onnx creates the data file 0600; a server running as another user must read it like the .onnx
        data = path.with_name(f"{path.name}.data")
        data.chmod(path.stat().st_mode & 0o777)
    else:
        onnx.save_model(model, str(path))


def _trace_to_onnx(module, inputs, in_names, out_names, axes, path, opset) -> None:
    import torch

    # The tracer warns about Python-level shape branches in diffusers; the parity check runs the
    # exported graph at a different batch size than the trace, which is the check that matters.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # dynamo=False on purpose: the TorchScript exporter handles diffusers' UNets without onnxscript
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        # instance norm always normalises by the input's own statistics (CycleGAN): "train=True" is right
        warnings.filterwarnings("ignore", message=".*'instance_norm' is set to train=True")
        torch.onnx.export(module, tuple(torch.from_numpy(inputs[n]) for n in in_names), str(path), input_names=in_names,
                          output_names=out_names, dynamic_axes=axes, opset_version=opset, dynamo=False,
                          do_constant_folding=True)


def record_weights(bundle_dir: Path, manifest) -> None:
    """Size and sha256 of every file under the manifest's eager weights paths (files or folders),
    relative to the bundle, so that a corrupt weights file is refused at load as a component's is."""
    from gen.cache import sha256_of
    from gen.runtime.manifest import ModelFile, parse

    files = []
    for named in manifest.weights.values():
        p = bundle_dir / named
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file():
                rel = f.relative_to(bundle_dir).as_posix()
                files.append(parse(ModelFile, {"path": rel, "bytes": f.stat().st_size, "sha256": sha256_of(f)}, rel))
    manifest.weights_files = files


def file_entry(path: Path) -> dict:
    from gen.cache import sha256_of

    entry = {"path": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
    # the weights beside the model: ONNX external data (<name>.data), or OpenVINO IR's <stem>.bin
    data = path.with_suffix(".bin") if path.suffix == ".xml" else path.with_name(path.name + ".data")
    if data.exists():
        entry["external_data"] = {"path": data.name, "bytes": data.stat().st_size, "sha256": sha256_of(data)}
    return entry


def session(path: Path):
    from gen.runtime.ort_session import ort_session

    try:
        return ort_session(path)
    except Exception as e:  # onnxruntime's own exception types
        raise GenError(f"ONNX Runtime cannot load the exported {path.name}: {str(e).splitlines()[0]}") from None


def parity(module, path: Path, example: Example) -> tuple[float, np.ndarray]:
    """Max |eager - ORT| on fresh inputs at PARITY_BATCH, and ORT's output (the fp16 reference)."""
    import torch

    feeds = example(PARITY_BATCH, 1)
    with torch.no_grad():
        ref = module(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    try:
        got = session(path).run(None, feeds)[0]
    except Exception as e:  # onnxruntime's own exception types
        raise GenError(f"the exported {path.stem} fails in ONNX Runtime at batch {PARITY_BATCH}: {str(e).splitlines()[0]}") from None
    return float(np.abs(ref - got).max()), got


def sample_images(bundle_dir: Path, precision: str, backend: str = "ort", **generate_kwargs) -> np.ndarray:
    """One Sampler call through `backend` (ORT) at `precision`, with what the family needs beyond n and seed
    (an input image for image-to-image) unless given; for a model that cannot sample (an autoencoder),
    its reconstructions of `n` seeded random images."""
    from gen.runtime.host import usable_cores
    from gen.runtime.quality import check_images
    from gen.runtime.sampler import Sampler

    # a pinned count, so a gate's figure does not move with other jobs' load (gen.runtime.threads)
    with Sampler(str(bundle_dir), backend=backend, precision=precision, threads=usable_cores()) as s:
        return check_images(s, **generate_kwargs)


def images_vs_fp32(bundle_dir: Path, precision: str, reference: np.ndarray | None = None, backend: str = "ort",
                   **generate_kwargs) -> dict:
    """End to end: the same Sampler call through ORT fp32 (or its `reference` images, already
    sampled) and `precision` on `backend`, the way users will compare them."""
    a = sample_images(bundle_dir, "fp32", **generate_kwargs) if reference is None else reference
    b = sample_images(bundle_dir, precision, backend=backend, **generate_kwargs)
    return {"psnr_db": round(psnr(a, b), 2), "max_abs": float(np.abs(a - b).max()), **generate_kwargs}
