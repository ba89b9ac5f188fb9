"""`gen export --int8`: calibrated, selective static INT8 (QDQ) components, chosen by measurement
and gated on whole sampling runs.

Naive INT8 of a diffusion UNet is slower than fp32 on CPUs and lossy (every op quantized, random
calibration). What pays here, component by component, on the staged bundle:

1. Calibration on real inputs: each component's feeds recorded while the fp32 bundle samples
   (gen.export.calibration), ranges by ONNX Runtime's calibrators (minmax, entropy or percentile),
   computed once and cached, then reused for every candidate below.
2. What to quantize, by measurement: ONNX Runtime's `quantize_static` (QDQ, per-channel s8 weights,
   7-bit on CPUs without VNNI whose u8s8 sums would saturate; u8 activations; after `quant_pre_process`) is run for each combination of the node groups the
   graph has (convolutions, transposed convolutions, linear layers, activation-by-activation matrix
   products such as attention's), and each candidate is timed against fp32 on recorded calls spread
   over the sampling run, in alternating blocks (gen.runtime.speed): a candidate pays only when the
   90% interval of its speed-up lies above `min_speedup`; blocks are added while it straddles the
   rule, and a candidate still straddling it at the time cap is *undecided* — never shipped, never
   called slower, and the export says to re-run on idle cores. The fastest is kept; a component that no
   candidate makes faster keeps its float file under the int8 name (recorded, with the figure).
3. Sensitive layers by measurement: the int8 bundle samples from the same noise as fp32 and its
   images' PSNR is the gate (`min_psnr`). Below it, the quantized inputs with the lowest
   signal-to-quantization-noise ratio (ONNX Runtime's qdq_loss_debug, on a recorded call) have their
   consumers kept in float, a few at a time, until the gate holds or the rounds run out; then export
   fails naming the figure and the layers that cost most, and nothing is written.

The `int8-trt` variant (on request) quantizes the same nodes with symmetric s8
activations (zero points 0), the explicit-quantization form TensorRT builds from; ORT runs it here
for the PSNR gate, but not for the speed rule (ORT's CPU speed of TensorRT's form says nothing of
TensorRT's; the figure is recorded). TensorRT itself is not verified (no TensorRT on these machines).
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.export.int8_options import CALIBRATION_DEFAULTS, GROUPS, Int8Options
from gen.runtime.speed import FASTER, NOT_FASTER, UNDECIDED

OPENVINO = "int8-ov"  # made by NNCF for the openvino backend (gen.export.int8_openvino), not by ORT's quantizer

# node groups tried in every combination present in the graph; everything else stays float.
# Matrix products split by what they multiply: a layer's weights (int8 GEMM kernels pay) or two
# activations (attention's scores and values, where quantizing both sides per call often does not).
_OP_TYPES = {"conv": ("Conv",), "convtranspose": ("ConvTranspose",), "linear": ("MatMul", "Gemm"), "attention": ("MatMul",)}
PROBE_CALLS = 4  # recorded calls, spread over the sampling run, that time and score each candidate
ROUND_SECONDS = 0.25  # a block repeats the probe calls until each side lasts about this long
MEASURE_SECONDS = 20.0  # per candidate: blocks are added while its interval straddles the rule, up to this
EXCLUDE_ROUNDS = 4  # gate rounds, each keeping the worst-measured layers in float
REFINE_ROUNDS, REFINE_MARGIN_DB = 2, 2.0  # after a passing round: give half back while the images clear the gate by this
STRIDE = 16  # calls per calibration chunk: bounds the calibrator's memory on big models


def node_groups(graph) -> dict[str, list[str]]:
    """The quantizable nodes of a graph by group (GROUPS), in graph order."""
    weights = {i.name for i in graph.initializer}
    out: dict[str, list[str]] = {}
    for n in graph.node:
        if n.op_type in ("Conv", "ConvTranspose"):
            group = n.op_type.lower()
        elif n.op_type in ("MatMul", "Gemm"):
            group = "linear" if weights & set(n.input) else "attention"
        else:
            continue
        out.setdefault(group, []).append(n.name)
    return {g: out[g] for g in GROUPS if g in out}


@dataclass
class Candidate:
    groups: tuple[str, ...]
    path: Path
    speedup: float = 0.0
    speed: dict = field(default_factory=dict)  # gen.runtime.speed's summary: interval, blocks, decision
    psnr_db: float = 0.0  # per call, on the probe calls
    max_abs: float = 0.0
    nodes: int = 0  # nodes quantized
    excluded: tuple[str, ...] = ()  # the nodes kept float when it was made: a gate round may add more


def _refuse_unmatched(patterns, names, examples) -> None:
    """--int8-exclude patterns that match none of `names`: a typo would silently keep nothing float."""
    unmatched = [p for p in patterns if not any(fnmatch(n, p) for n in names)]
    if unmatched:
        shown = sorted(set(examples))[:4]
        raise GenError(f"--int8-exclude {', '.join(unmatched)} matches no quantizable node; node names look like "
                       f"{', '.join(shown) or '(none: no component is quantized)'}; nothing was written")


def quantize_bundle(tmp: Path, manifest, options: Int8Options, precisions, progress=print) -> None:
    """Add the int8 variants (those of `precisions` that are calibrated) to the staged bundle at
    `tmp`, record their figures in `manifest` and rewrite it; GenError, leaving the bundle to be
    discarded, when calibration fails or the gate cannot be met."""
    from gen.export.calibration import record_calibration
    from gen.export.onnx_io import sample_images
    from gen.runtime.manifest import MANIFEST, write_manifest

    options.check()
    if options.exclude:  # a typo is refused now, not after minutes of calibration
        import onnx

        graphs = [onnx.load(str(tmp / c.files["fp32"].path), load_external_data=False).graph
                  for c in manifest.components.values()]
        _refuse_unmatched(options.exclude, [n.name for g in graphs for n in g.node],
                          [n.name for g in graphs for n in g.node if n.op_type in ("Conv", "MatMul", "Gemm")])
    images = options.calibration or CALIBRATION_DEFAULTS["prompts" if manifest.text is not None else "images"]
    recorded = record_calibration(tmp, images, options.seed, progress=progress)
    work = tmp / ".int8-work"
    work.mkdir()
    ort_precisions = [p for p in precisions if p != OPENVINO]
    try:
        reference = sample_images(tmp, "fp32", **options.gate_images)  # every gate round compares with it
        if ort_precisions:
            plans = {name: _plan_component(tmp, name, manifest, recorded.get(name, []), options, work, progress)
                     for name in manifest.components}
            _refuse_unmatched(options.exclude, [n for plan in plans.values() for n in plan.excluded],
                              [n for plan in plans.values() for ns in plan.groups.values() for n in ns])
        for precision in ort_precisions:
            _gate(tmp, manifest, plans, precision, options, work, reference, progress)
        if OPENVINO in precisions:
            from gen.export.int8_openvino import quantize_openvino

            quantize_openvino(tmp, manifest, options, recorded, reference, progress)
        manifest.export["int8"] = {"calibration_images": images, "method": options.method,
                                   # 7-bit weights: quantized on a CPU whose u8s8 sums saturate (no VNNI)
                                   "reduce_range": reduce_range(False),
                                   "min_psnr_db": options.min_psnr, "exclude": list(options.exclude),
                                   "min_speedup": options.min_speedup, "groups": list(options.groups),
                                   "calls_recorded": {k: len(v) for k, v in recorded.items()}}
        write_manifest(tmp / MANIFEST, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Plan:
    """One component's int8 choice: its quantized groups, its float-kept nodes, and how to rebuild it."""

    name: str
    fp32: Path
    prepared: Path | None = None  # quant_pre_process output; None when the component stays float
    cache: Path | None = None
    groups: dict[str, list[str]] = field(default_factory=dict)  # every quantizable node, by group
    excluded: list[str] = field(default_factory=list)
    probes: list[dict] = field(default_factory=list)
    record: dict = field(default_factory=dict)
    best: Candidate | None = None  # the chosen candidate (its groups are the ones quantized), file and figures
    _fp32: tuple | None = None  # (session, outputs on the probes): loaded once, timed against every candidate

    def fp32_reference(self):
        if self._fp32 is None:
            session = _session(self.fp32)
            self._fp32 = (session, [session.run(None, f)[0] for f in self.probes])  # also its warm-up
        return self._fp32


def _plan_component(tmp, name, manifest, feeds, options, work, progress) -> Plan:
    import onnx

    fp32 = tmp / manifest.components[name].files["fp32"].path
    plan = Plan(name, fp32)
    if not feeds:
        plan.record = {"kept_float": "not called while sampling, so there is nothing to calibrate it on"}
        progress(f"  {name}: kept float ({plan.record['kept_float']})")
        return plan
    prepared = _prepare(fp32, work / f"{name}.pre.onnx", progress)
    graph = onnx.load(str(prepared), load_external_data=False).graph
    plan.groups = node_groups(graph)
    if options.groups:
        plan.groups = {g: v for g, v in plan.groups.items() if g in options.groups}
    if not plan.groups:
        plan.record = {"kept_float": f"has no {'/'.join(options.groups) or 'convolution or matrix product'} node to quantize"}
        progress(f"  {name}: kept float ({plan.record['kept_float']})")
        return plan
    plan.prepared, plan.cache = prepared, work / f"{name}.calibration.json"
    plan.excluded = sorted({n.name for n in graph.node for p in options.exclude if fnmatch(n.name, p)})
    plan.probes = [feeds[i] for i in sorted(set(np.linspace(0, len(feeds) - 1, PROBE_CALLS).astype(int)))]
    progress(f"  {name}: calibrating {', '.join(plan.groups)} on {len(feeds)} recorded calls ({options.method}) ...")
    calibrated = Candidate(tuple(plan.groups), work / f"{name}.{'-'.join(plan.groups)}.int8.onnx",
                           excluded=tuple(plan.excluded))
    try:  # the first quantization calibrates every candidate's tensors; the rest read the cache
        calibrated.nodes = _quantize(plan, calibrated.groups, calibrated.path, options, feeds=feeds)
    except GenError:
        raise
    except Exception as e:  # onnxruntime's quantizer raises many types; the message is what helps
        raise GenError(f"int8 calibration of {name} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                       "nothing was written") from None
    candidates = []
    sizes = [len(plan.groups)] if options.groups else range(1, len(plan.groups) + 1)  # pinned: just that one
    for k in sizes:
        for combo in itertools.combinations(plan.groups, k):
            c = calibrated if combo == calibrated.groups else Candidate(combo, work / f"{name}.{'-'.join(combo)}.int8.onnx",
                                                                        excluded=tuple(plan.excluded))
            if c is not calibrated:  # the calibration pass already quantized every group
                c.nodes = _quantize(plan, combo, c.path, options)
            _measure(c, plan, options.min_speedup)
            progress(f"    {'+'.join(combo):<26} {c.nodes:>4} nodes  {_speed_text(c)}  {c.psnr_db:.1f} dB")
            candidates.append(c)
    best = max(candidates, key=lambda c: c.speedup)
    table = [{"groups": list(c.groups), "nodes": c.nodes, "speedup_per_call": round(c.speedup, 3),
              "speed": c.speed, "psnr_db": round(c.psnr_db, 2)} for c in candidates]
    if best.speed["decision"] != FASTER:
        plan.record = {"kept_float": f"{_verdict(best.speed['decision'])}: the fastest, {'+'.join(best.groups)}, ran at "
                                     f"{_speed_text(best)} (--int8-min-speedup {options.min_speedup})",
                       "candidates": table, "decision": best.speed["decision"]}
        progress(f"  {name}: kept float ({plan.record['kept_float']})")
        plan.prepared = None
        return plan
    plan.best = best
    plan.record = {"candidates": table}
    return plan


def _prepare(fp32: Path, out: Path, progress) -> Path:
    """quant_pre_process: ORT's fusions and shape inference, so the quantizer sees every tensor's
    shape. Symbolic shape inference gives up on some dynamic graphs; ONNX's own then suffices. A
    graph neither handles is quantized as it is."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    error, fp32, out = None, fp32.resolve(), out.resolve()  # absolute: the call runs in another directory
    for skip_symbolic in (False, True):
        try:
            with _quiet(), _cwd(out.parent):  # a failed symbolic pass saves a debug model into the cwd
                quant_pre_process(str(fp32), str(out), skip_symbolic_shape=skip_symbolic, save_as_external_data=_big(fp32),
                                  all_tensors_to_one_file=True, external_data_location=f"{out.name}.data")
            return out
        except Exception as e:  # its failure costs only the optimisation, not the quantization
            error = e
    progress(f"    (quant_pre_process skipped: {str(error).splitlines()[0] if str(error) else type(error).__name__})")
    return fp32


@contextmanager
def _cwd(path: Path):
    """Run in `path` (the staging work directory), so files a library drops into the current
    directory go away with it. Export is single-threaded; the previous directory is restored."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextmanager
def _quiet():
    """ONNX Runtime's quantizer logs advice through the root logger on every call, and its percentile
    calibrator prints its settings; silence both for the call only (gen changes no logger's level for good)."""
    import contextlib
    import io

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _big(path: Path) -> bool:
    return path.with_name(path.name + ".data").exists()


def reduce_range(symmetric: bool) -> bool:
    """7-bit weights where this CPU's u8s8 kernels would saturate (gen.runtime.host.int8_sums_saturate);
    TensorRT's symmetric s8 files are for its kernels, not these, and keep 8 bits."""
    from gen.runtime.host import int8_sums_saturate

    return not symmetric and int8_sums_saturate()


def _quantize(plan: Plan, groups, out: Path, options: Int8Options, feeds=None, symmetric: bool = False) -> int:
    """QDQ-quantize `plan.prepared` to `out`: the nodes of `groups`, less plan.excluded; ranges from
    the plan's calibration cache (computed from `feeds` on the first call, for the op types of
    `groups`). Returns the number of nodes that now read dequantized int8."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from gen.export.calibration import ReplayReader

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[options.method]
    extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
    reader = None
    if feeds is not None:
        # whole chunks of STRIDE calls; the calibrator folds each chunk in and drops it
        usable = len(feeds) - len(feeds) % STRIDE if len(feeds) >= STRIDE else len(feeds)
        reader = ReplayReader(feeds[:usable])
        extra["CalibStridedMinMax"] = min(STRIDE, usable)
        if options.method == "percentile":
            extra["CalibPercentile"] = 99.999
    nodes = [n for g in groups for n in plan.groups[g] if n not in plan.excluded]
    ops = sorted({t for g in groups for t in _OP_TYPES[g]})
    if not nodes:  # ORT reads an empty nodes_to_quantize as "all of them"
        raise GenError(f"{plan.name}: every {'/'.join(groups)} node is excluded (--int8-exclude), so nothing is "
                       "left to quantize; exclude fewer, or export without --int8")
    with _quiet():
        quantize_static(str(plan.prepared), str(out), calibration_data_reader=reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=ops, nodes_to_quantize=nodes, per_channel=True,
                        reduce_range=reduce_range(symmetric),
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=method, extra_options=extra,
                        use_external_data_format=_big(plan.fp32), calibration_cache_path=str(plan.cache))
    import onnx

    graph = onnx.load(str(out), load_external_data=False).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return sum(1 for n in graph.node if n.name in nodes and dequantized & set(n.input))


def _session(path: Path):
    from gen.runtime.ort_session import ort_session

    return ort_session(path)


def _measure(c: Candidate, plan: Plan, threshold: float) -> None:
    """Per-call speed against fp32 and error on the plan's probe calls: timed in alternating blocks,
    each long enough (ROUND_SECONDS) that a small net's milliseconds are not lost in timer noise,
    until the speed-up's interval is clear of `threshold` or MEASURE_SECONDS have passed."""
    from gen.runtime.speed import Race

    feeds = plan.probes
    a, ref = plan.fp32_reference()
    b = _session(c.path)
    got = [b.run(None, f)[0] for f in feeds]  # also the warm-up

    def calls(sess):
        return lambda: [sess.run(None, f) for f in feeds]

    c.speed = Race({"fp32": calls(a), "int8": calls(b)}, "fp32", threshold, max_seconds=MEASURE_SECONDS,
                   block_seconds=ROUND_SECONDS).run()["int8"]
    c.speedup = c.speed["speedup"]
    r, g = np.concatenate([x.ravel() for x in ref]), np.concatenate([x.ravel() for x in got])
    from gen.export.onnx_io import psnr

    c.max_abs = float(np.abs(r - g).max())
    c.psnr_db = psnr(r, g, peak=float(np.abs(r).max()) or 1.0)


def _gate(tmp, manifest, plans, precision, options, work, reference, progress) -> None:
    """Write `precision`'s files, sample against fp32, and keep the worst layers float until the
    whole-run PSNR reaches the gate (or fail naming them)."""
    active = _quantized(plans)
    active, record = _gate_rounds(tmp, manifest, plans, active, precision, options, work, reference, progress)
    demoted: dict[str, str] = {}  # component -> why it ships float after all
    for plan in plans.values():
        entry, why = _shipped_entry(plan, active, tmp, precision, options, progress)
        if why is not None:
            demoted[plan.name] = why
        manifest.parity.setdefault(plan.name, {})[f"ort_{precision}_vs_fp32"] = entry
    if demoted:
        record = _ship_float(tmp, manifest, plans, active, demoted, precision, options, reference, progress)
    manifest.parity[f"images_{precision}_vs_fp32"] = record


def _quantized(plans: dict) -> list:
    """The plans the search chose to quantize; none is refused, saying why."""
    active = [p for p in plans.values() if p.prepared is not None]
    if not active:
        reasons = "; ".join(f"{p.name}: {p.record.get('kept_float')}" for p in plans.values())
        if any(p.record.get("decision") == UNDECIDED for p in plans.values()):
            raise GenError(f"int8's speed-up is undecided here ({reasons}); nothing was written. {_NOISY}")
        raise GenError(f"int8 would change nothing in this bundle ({reasons}); nothing was written. "
                       "Export without --int8 (fp32 is this model's fastest CPU precision), or pass "
                       "--int8-min-speedup 0 to quantize it anyway")
    return active


def _gate_rounds(tmp, manifest, plans, active, precision, options, work, reference, progress):
    """Rounds of: write the files, sample the bundle against fp32, and keep the worst tenth of the quantized
    layers float, until the images pass the gate; then, where they pass by a wide margin, give the last
    round's less costly half back to int8 while they still pass (_refine). Returns the plans still quantized
    and the passing record."""
    from gen.export.onnx_io import images_vs_fp32
    from gen.runtime.families import get_family

    discrete = get_family(manifest.family).discrete_sampling
    costly: list[tuple[float, str, str]] = []

    def write() -> None:  # the files of the plans as they stand (`active` as of the current round)
        _write_files(tmp, manifest, plans, active, precision, options)

    def check(note: str = "") -> dict:
        write()
        record = images_vs_fp32(tmp, precision, reference=reference, **options.gate_images)
        progress(f"  images {precision} vs fp32: {record['psnr_db']} dB PSNR (gate {options.min_psnr} dB)" + note)
        return record

    added: list[tuple[str, str]] = []
    for round_ in range(EXCLUDE_ROUNDS + 1):
        active = [p for p in active if _int8_nodes(p)]  # a gate round may have kept all of one float
        if not active:
            raise GenError(f"int8 ({precision}) images fall below the gate --int8-min-psnr {options.min_psnr} until "
                           "every quantized layer is kept float, so int8 would change nothing; nothing was "
                           "written. Export without --int8, or lower the gate")
        kept = sum(len(p.excluded) for p in plans.values())
        record = check(f", {kept} layer(s) kept float" if round_ else "")
        if record["psnr_db"] >= options.min_psnr:
            return active, _refine(record, added, plans, options, check, write)
        costly = sorted(x for p in active for x in _costly_layers(p, tmp / f"{p.name}{_suffix(precision)}.onnx", work))
        fresh = [(db, comp, node) for db, comp, node in costly if node not in plans[comp].excluded]
        if round_ == EXCLUDE_ROUNDS or not fresh or discrete:  # keeping layers float cannot stop code flips
            worst = ", ".join(f"{comp}:{node} ({db:.1f} dB)" for db, comp, node in costly[:6]) or "none measurable"
            raise GenError(f"int8 ({precision}) images reach {record['psnr_db']} dB PSNR against fp32, below the gate "
                           f"--int8-min-psnr {options.min_psnr}; the layers that cost most (SQNR of their quantized "
                           f"input): {worst}. Keep them float with --int8-exclude PATTERN, calibrate on more images "
                           f"(--calibration) or another --calibration-method, or lower the gate; nothing was written"
                           + (_DISCRETE_NOTE.format(family=manifest.family) if discrete else ""))
        added = [(comp, node) for _, comp, node in fresh[:max(1, len(fresh) // 10)]]  # the worst tenth of what is left
        for comp, node in added:
            plans[comp].excluded.append(node)
    raise AssertionError("unreachable: the last round passes or raises")


def _refine(record: dict, added: list, plans: dict, options, check, rewrite) -> dict:
    """A round of the worst tenth can overshoot (the SD UNet went from 27.2 to 35.6 dB against a 30 dB gate,
    37 layers kept float): while the images clear the gate by REFINE_MARGIN_DB, try the last round's less
    costly half in int8 again, keeping it where the images still pass, else putting it back."""
    for _ in range(REFINE_ROUNDS):
        if len(added) < 2 or record["psnr_db"] < options.min_psnr + REFINE_MARGIN_DB:
            break
        back = added[len(added) // 2:]
        for comp, node in back:
            plans[comp].excluded.remove(node)
        kept = sum(len(p.excluded) for p in plans.values())
        trial = check(f", {kept} layer(s) kept float ({len(back)} given back to int8)")
        if trial["psnr_db"] < options.min_psnr:
            for comp, node in back:
                plans[comp].excluded.append(node)
            rewrite()  # the passing files again (the same quantization: deterministic)
            break
        record, added = trial, added[:len(added) // 2]
    return record


def _suffix(precision: str) -> str:
    from gen.runtime.precision import check_precision

    return check_precision(precision).suffix


def _write_files(tmp, manifest, plans, active, precision, options) -> None:
    """Each component's file for this precision as the plans now stand, and the manifest naming them."""
    from gen.export.onnx_io import file_entry
    from gen.runtime.manifest import MANIFEST, ModelFile, parse, write_manifest

    symmetric, suffix = precision == "int8-trt", _suffix(precision)
    for plan in plans.values():
        if plan not in active:  # float as planned, or every quantized node kept float by the gate
            path = plan.fp32
        else:
            path = tmp / f"{plan.name}{suffix}.onnx"
            if _reusable(plan, symmetric):  # the same quantization, already made
                shutil.copyfile(plan.best.path, path)
            else:
                _quantize(plan, plan.best.groups, path, options, symmetric=symmetric)
        manifest.components[plan.name].files[precision] = parse(ModelFile, file_entry(path), "file")
    write_manifest(tmp / MANIFEST, manifest)


def _shipped_entry(plan, active, tmp, precision, options, progress) -> tuple[dict, str | None]:
    """A component's parity record for what ships once gated, and why it ships float after all when,
    timed again, its int8 file does not pay (else None)."""
    from gen.runtime.precision import check_precision

    symmetric, suffix = precision == "int8-trt", check_precision(precision).suffix
    entry = dict(plan.record)
    if plan.prepared is not None and plan not in active:
        entry["kept_float"] = "the gate kept every quantized node float"
        progress(f"  {plan.name} {precision}: kept float ({entry['kept_float']})")
    elif plan.prepared is not None:
        c = plan.best
        if not (_reusable(plan, symmetric) and len(plan.record["candidates"]) == 1):
            # timed again unless the search timed this file alone: the fastest of several timings
            # is biased upward by the noise that made it win
            c = Candidate(plan.best.groups, tmp / f"{plan.name}{suffix}.onnx")
            _measure(c, plan, options.min_speedup)
        entry.update({"groups": list(c.groups), "kept_float_nodes": list(plan.excluded),
                      "speedup_per_call": round(c.speedup, 3), "speed": c.speed, "psnr_db": round(c.psnr_db, 2),
                      "max_abs": c.max_abs})
        progress(f"  {plan.name} {precision}: {_speed_text(c)}, {c.psnr_db:.1f} dB per call, "
                 f"{len(plan.excluded)} layer(s) kept float")
        if symmetric:  # TensorRT's form: ORT's CPU speed says nothing of TensorRT's, so it is only recorded
            entry["speedup_note"] = "ORT CPU figure, recorded only: int8-trt is for TensorRT and not speed-gated here"
        elif c.speed["decision"] != FASTER:  # the rule holds for what ships, not only for the search's figure
            entry["kept_float"] = (f"{_verdict(c.speed['decision'])} as gated ({len(plan.excluded)} layer(s) kept "
                                   f"float): it ran at {_speed_text(c)} (--int8-min-speedup {options.min_speedup})")
            progress(f"  {plan.name} {precision}: kept float ({entry['kept_float']})")
            return entry, entry["kept_float"]
    return entry, None


def _ship_float(tmp, manifest, plans, active, demoted, precision, options, reference, progress) -> dict:
    """The `demoted` components' float files in place of their int8 ones (refused when that is all of them),
    and the images of what now ships against fp32."""
    from gen.export.onnx_io import file_entry, images_vs_fp32
    from gen.runtime.manifest import MANIFEST, ModelFile, parse, write_manifest
    from gen.runtime.precision import check_precision

    if all(p.name in demoted for p in active):
        why = "; ".join(f"{name}: {reason}" for name, reason in demoted.items())
        if any(UNDECIDED in reason for reason in demoted.values()):
            raise GenError(f"int8 ({precision})'s speed-up is undecided here once gated ({why}); nothing was "
                           f"written. {_NOISY}")
        raise GenError(f"int8 ({precision}) does not pay here once gated ({why}); nothing was written. Export "
                       "without --int8, or pass --int8-min-speedup 0 to ship it anyway")
    suffix = check_precision(precision).suffix
    for name in demoted:
        for f in tmp.glob(f"{name}{suffix}.onnx*"):  # the model and any external data beside it
            f.unlink()
        manifest.components[name].files[precision] = parse(ModelFile, file_entry(plans[name].fp32), "file")
    write_manifest(tmp / MANIFEST, manifest)
    record = images_vs_fp32(tmp, precision, reference=reference, **options.gate_images)  # what now ships
    progress(f"  images {precision} vs fp32, with {', '.join(demoted)} float: {record['psnr_db']} dB PSNR")
    return record


_NOISY = ("Its speed-up is too close to the rule, or the timings too noisy (another process on these cores?), to "
          "tell: re-run on idle cores, choose the rule with --int8-min-speedup (0 ships int8 without it)")


def _verdict(decision: str) -> str:
    return "int8 does not pay here" if decision == NOT_FASTER else f"{UNDECIDED}, too close or too noisy to tell"


def _speed_text(c: Candidate) -> str:
    from gen.runtime.speed import describe

    return f"{describe(c.speed)} fp32 per call" if c.speed else f"{c.speedup:.2f}x fp32 per call"


_DISCRETE_NOTE = (". A {family} bundle samples discrete codes: one that int8's outputs flip changes every later one, "
                  "so its images cannot track fp32's, and keeping a few layers float does not fix that. To ship int8 "
                  "anyway, pass --int8-min-psnr 0 and judge it by distribution: gen eval BUNDLE --precision int8")


def _int8_nodes(plan: Plan) -> list[str]:
    """The nodes the plan's chosen groups quantize, less those kept float."""
    return [n for g in plan.best.groups for n in plan.groups[g] if n not in plan.excluded]


def _reusable(plan: Plan, symmetric: bool) -> bool:
    """Whether the gate's file would be the plan's chosen candidate as it was made: the same
    float-kept nodes (a gate round, of this precision or an earlier one, may have added some), the
    same (asymmetric) activations, and one ONNX file (a big model's external data file is named
    after its model file, so a copy would point at the wrong one)."""
    return (plan.best is not None and not symmetric and not _big(plan.fp32)
            and plan.best.excluded == tuple(plan.excluded))


def _costly_layers(plan: Plan, qdq: Path, work: Path) -> list[tuple[float, str, str]]:
    """(SQNR dB, component, node) for each quantized node, by the SQNR of its worst quantized input
    on one recorded call (qdq_loss_debug): low means int8 represents what it reads badly."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, create_activation_matching,
                                                         compute_signal_to_quantization_noice_ratio as sqnr,
                                                         modify_model_output_intermediate_tensors)

    from gen.export.calibration import ReplayReader

    augmented = work / f"{plan.name}.debug.onnx"
    with _quiet():
        modify_model_output_intermediate_tensors(str(qdq), str(augmented), save_as_external_data=_big(plan.fp32))
        acts = collect_activations(str(augmented), ReplayReader(plan.probes[:1]))
    errors = {k: sqnr(m["pre_qdq"], m["post_qdq"]) for k, m in create_activation_matching(acts).items()}
    graph = onnx.load(str(plan.prepared), load_external_data=False).graph
    chosen = set(_int8_nodes(plan))
    out = []
    for node in graph.node:
        if node.name not in chosen:
            continue
        scores = [errors[i] for i in node.input if i in errors]
        if scores:
            out.append((float(min(scores)), plan.name, node.name))
    augmented.unlink(missing_ok=True)
    return out
