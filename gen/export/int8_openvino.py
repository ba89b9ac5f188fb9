"""`gen export --int8 --int8-openvino`: int8 components for the OpenVINO backend, quantized by NNCF.

ONNX Runtime's QDQ files run on OpenVINO too, but NNCF quantizes for OpenVINO's own kernels: its
post-training quantization inserts FakeQuantize where OpenVINO's CPU plugin fuses them, with fast bias
correction, and writes OpenVINO IR (`<component>.int8-ov.xml` + `.bin`). It takes what the ORT path
takes, component by component:

1. Calibration: the same recorded feeds of real sampling runs (gen.export.calibration).
2. What to quantize, by measurement: `conv` (convolutions only: MatMul ignored), `conv+linear`
   (everything NNCF quantizes) and `hybrid` (convolutions quantized, linear layers' weights
   compressed to int8 with activations left float: optimum-intel's recipe for SD UNets, where full
   8-bit PTQ of attention hurt images). Each is timed against the same component at f32 on OpenVINO
   in alternating blocks (gen.runtime.speed) and kept only when decided faster than --int8-min-speedup;
   otherwise the component keeps its fp32 file under the int8-ov name (recorded, with the figure).
3. The gate: whole images on the openvino backend against ORT fp32 from the same noise, at
   --int8-min-psnr; the fastest candidates that fail it are replaced by the next (fewer quantized ops)
   until it holds, else the export fails and writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from gen.errors import GenError

PRECISION = "int8-ov"
CANDIDATES = ("conv+linear", "hybrid", "conv")  # most quantized first: the gate falls back along this order
PROBE_CALLS = 4
SUBSET = 300  # NNCF's calibration subset (its default); the recorded calls are spread over it


@dataclass
class OvChoice:
    name: str
    fp32: Path
    ranked: list[tuple[str, Path, dict]] = field(default_factory=list)  # (candidate, file, speed) fastest first
    record: dict = field(default_factory=dict)


def _nncf():
    try:
        import nncf
    except ImportError:
        raise GenError("--int8-openvino quantizes with NNCF, which is not installed: pip install 'gen[openvino-int8]'") from None
    logging.getLogger("nncf").setLevel(logging.ERROR)  # its per-node INFO lines would bury the export's own
    return nncf


def _quantize(model, candidate: str, feeds: list[dict], nncf):
    dataset = nncf.Dataset(feeds)
    size = min(len(feeds), SUBSET)
    if candidate == "conv+linear":
        return nncf.quantize(model, dataset, subset_size=size, preset=nncf.QuantizationPreset.MIXED)
    quantized = nncf.quantize(model, dataset, subset_size=size, preset=nncf.QuantizationPreset.MIXED,
                              ignored_scope=nncf.IgnoredScope(types=["MatMul"], validate=False))
    if candidate == "hybrid":  # the linear layers' weights to int8, their activations float
        quantized = nncf.compress_weights(quantized, mode=nncf.CompressWeightsMode.INT8_ASYM)
    return quantized


def _plan(tmp: Path, name: str, manifest, feeds: list[dict], options, work: Path, progress) -> OvChoice:
    import openvino as ov

    from gen.runtime.backends.openvino import compile_config, shared_core
    from gen.runtime.host import usable_cores
    from gen.runtime.speed import FASTER, Race, describe

    fp32 = tmp / manifest.components[name].files["fp32"].path
    choice = OvChoice(name, fp32)
    if not feeds:
        choice.record = {"kept_float": "not called while sampling, so there is nothing to calibrate it on"}
        return choice
    nncf, core = _nncf(), shared_core()
    config = compile_config(usable_cores())  # as the openvino backend runs it, at f32
    probes = [feeds[int(i * (len(feeds) - 1) / max(PROBE_CALLS - 1, 1))] for i in range(min(PROBE_CALLS, len(feeds)))]
    reference = core.compile_model(core.read_model(str(fp32)), "CPU", config)
    wanted = [c for c in CANDIDATES if not options.groups or c == "+".join(options.groups)] or list(CANDIDATES)
    table = []
    for candidate in wanted:
        progress(f"  {name}: NNCF {candidate} on {len(feeds)} recorded calls ...")
        try:
            quantized = _quantize(core.read_model(str(fp32)), candidate, feeds, nncf)
        except Exception as e:  # NNCF raises many types; what it says is what helps
            raise GenError(f"NNCF could not quantize {name} ({candidate}): {str(e).strip().splitlines()[0]}; "
                           "nothing was written") from None
        path = work / f"{name}.{candidate.replace('+', '-')}.xml"
        ov.save_model(quantized, str(path), compress_to_fp16=False)
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        speed = Race({"f32": lambda: [reference(p) for p in probes], "int8": lambda c=compiled: [c(p) for p in probes]},
                     "f32", options.min_speedup, max_seconds=20.0, block_seconds=0.25).run()["int8"]
        progress(f"    {candidate:<12} {describe(speed)} OpenVINO f32 per call")
        table.append({"candidate": candidate, "speed": speed})
        if speed["decision"] == FASTER:
            choice.ranked.append((candidate, path, speed))
    choice.ranked.sort(key=lambda c: -c[2]["speedup"])
    choice.record = {"candidates": table}
    if not choice.ranked:
        choice.record["kept_float"] = (f"no NNCF candidate ran decidedly faster than --int8-min-speedup {options.min_speedup} "
                                       "on OpenVINO (see candidates)")
    return choice


def quantize_openvino(tmp: Path, manifest, options, recorded: dict, reference, progress) -> None:
    """Write the int8-ov files and their figures into the staged bundle, or fail writing nothing."""
    import shutil

    from gen.export.onnx_io import file_entry, images_vs_fp32
    from gen.runtime.manifest import MANIFEST, ModelFile, parse, write_manifest

    work = tmp / ".int8-ov-work"
    work.mkdir()
    try:
        choices = {name: _plan(tmp, name, manifest, recorded.get(name, []), options, work, progress)
                   for name in manifest.components}
        if not any(c.ranked for c in choices.values()):
            why = "; ".join(f"{c.name}: {c.record.get('kept_float')}" for c in choices.values())
            raise GenError(f"int8 on OpenVINO would change nothing in this bundle ({why}); nothing was written. "
                           "Export without --int8-openvino, or pass --int8-min-speedup 0 to quantize anyway")
        while True:
            for c in choices.values():
                for old in tmp.glob(f"{c.name}.{PRECISION}.*"):
                    old.unlink()
                if c.ranked:
                    candidate, path, speed = c.ranked[0]
                    target = tmp / f"{c.name}.{PRECISION}.xml"
                    shutil.copyfile(path, target)
                    shutil.copyfile(path.with_suffix(".bin"), target.with_suffix(".bin"))
                    manifest.components[c.name].files[PRECISION] = parse(ModelFile, file_entry(target), "file")
                    manifest.parity.setdefault(c.name, {})[f"openvino_{PRECISION}_vs_fp32"] = {
                        **c.record, "chosen": candidate, "speed": speed}
                else:
                    manifest.components[c.name].files[PRECISION] = parse(ModelFile, file_entry(c.fp32), "file")
                    manifest.parity.setdefault(c.name, {})[f"openvino_{PRECISION}_vs_fp32"] = dict(c.record)
            write_manifest(tmp / MANIFEST, manifest)
            record = images_vs_fp32(tmp, PRECISION, reference=reference, backend="openvino", **options.gate_images)
            shown = ", ".join(f"{c.name} {c.ranked[0][0]}" for c in choices.values() if c.ranked)
            progress(f"  images {PRECISION} ({shown}) vs fp32: {record['psnr_db']} dB PSNR (gate {options.min_psnr} dB)")
            if record["psnr_db"] >= options.min_psnr:
                manifest.parity[f"images_{PRECISION}_vs_fp32"] = record
                write_manifest(tmp / MANIFEST, manifest)
                return
            # the component with the most quantized choice steps back to its candidates that quantize less
            worst = min((c for c in choices.values() if c.ranked), key=lambda c: CANDIDATES.index(c.ranked[0][0]))
            current = CANDIDATES.index(worst.ranked[0][0])
            worst.ranked = [r for r in worst.ranked if CANDIDATES.index(r[0]) > current]
            if not any(c.ranked for c in choices.values()):
                raise GenError(f"int8 on OpenVINO: images reach {record['psnr_db']} dB PSNR against fp32, below the "
                               f"gate --int8-min-psnr {options.min_psnr}, with every candidate tried; nothing was "
                               "written. Export without --int8-openvino, calibrate on more images (--calibration), "
                               "or lower the gate")
    finally:
        shutil.rmtree(work, ignore_errors=True)
