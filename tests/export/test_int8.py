"""`gen export --int8`: calibrated on recorded sampling runs, selective, gated; and int8 downstream."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from gen.errors import GenError
from gen.export.calibration import RecordingBackend, ReplayReader, record_calibration
from gen.export.int8_options import Int8Options
from gen.export.onnx_export import export_run
from gen.runtime.bundle import load_bundle
from gen.runtime.sampler import Sampler
from gen.trainkit.train import train

QUIET = {"progress": lambda *_: None}


def pin(c, ratios, threshold):
    """Set a candidate's timing (a 2-core box cannot make timings on demand): block ratios, or one
    speed-up for every block; the decision is gen.runtime.speed's, as a real measurement's would be."""
    from gen.runtime.speed import Estimate

    ratios = list(ratios) if isinstance(ratios, (list, tuple)) else [ratios] * 5
    c.speed = Estimate(ratios).summary(threshold)
    c.speedup = c.speed["speedup"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    opts = {"widths": [16, 32], "batch_size": 16, "steps": 20, "log_every": 20, "sample_every": 100, "checkpoint_every": 100}
    return train("ddpm", "digits", str(tmp_path_factory.mktemp("r") / "run"), opts, progress=False).path


def test_calibration_replays_every_step_of_real_sampling_runs(bundles):
    recorded = record_calibration(bundles["cddpm"], images=20, seed=3, **QUIET)
    calls = recorded["denoiser"]
    steps = load_bundle(bundles["cddpm"]).sampling.default_steps
    assert len(calls) == 2 * steps  # 20 images: one call of 16 and one of 4, each through every step
    assert [len(c["sample"]) for c in (calls[0], calls[-1])] == [16, 4]
    assert len({int(c["timestep"][0]) for c in calls[:steps]}) == steps  # every timestep of the run
    reader = ReplayReader(calls)
    assert len(reader) == len(calls) and reader.get_next() is calls[0]
    reader.set_range(5, 7)
    assert [reader.get_next(), reader.get_next(), reader.get_next()] == [calls[5], calls[6], None]


def test_int8_bundle_records_its_choices_and_samples_close_to_fp32(bundles):
    bundle = load_bundle(bundles["cddpm"])
    assert set(bundle.components["denoiser"].files) == {"fp32", "fp16", "int8"}
    assert bundle.default_precision == "fp16"  # int8 is never a bundle's default
    record = bundle.manifest.parity["denoiser"]["ort_int8_vs_fp32"]
    # the tiny UNet has no attention: convolutions and the time embedding's linear layers
    assert {tuple(c["groups"]) for c in record["candidates"]} == {("conv",), ("linear",), ("conv", "linear")}
    assert record["groups"] in [c["groups"] for c in record["candidates"]] and record["speedup_per_call"] > 0
    assert bundle.manifest.parity["images_int8_vs_fp32"]["psnr_db"] >= 20.0
    assert bundle.manifest.export["int8"]["calls_recorded"]["denoiser"] > 0
    from gen.runtime.host import int8_sums_saturate

    assert bundle.manifest.export["int8"]["reduce_range"] is int8_sums_saturate()  # 7-bit weights, said
    model = onnx.load(str(bundle.onnx_path("denoiser", "int8")))
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 0
    kwargs = {"n": 6, "seed": 11, "labels": [1, 2, 3, 4, 5, 6], "steps": 10}
    a = Sampler(str(bundles["cddpm"]), precision="fp32").generate(**kwargs)
    b = Sampler(str(bundles["cddpm"]), precision="int8").generate(**kwargs)
    assert 0 < np.abs(a - b).max() and 10 * np.log10(4 / np.mean((a - b) ** 2)) >= 20.0


def test_int8_runs_on_ort_only_and_needs_an_int8_export(bundles):
    with pytest.raises(GenError, match="int8 is a calibrated ONNX variant: run it with backend 'ort'"):
        Sampler(str(bundles["cddpm"]), backend="eager", precision="int8")
    with pytest.raises(GenError, match=r"has no int8 generator .*re-export with --int8"):
        Sampler(str(bundles["gan"]), precision="int8").generate(n=1)


def test_a_gate_that_cannot_be_met_names_the_costly_layers_and_writes_nothing(run, tmp_path):
    out = tmp_path / "b"
    with pytest.raises(GenError) as e:
        export_run(str(run), str(out), precisions=("fp32", "int8"), int8=Int8Options(calibration=16, min_psnr=200, min_speedup=0), **QUIET)
    message = str(e.value)
    assert "below the gate --int8-min-psnr 200" in message and "the layers that cost most" in message
    assert "denoiser:/unet/" in message and "nothing was written" in message
    assert list(tmp_path.iterdir()) == []  # no bundle, no staging directory left


def test_each_quantization_is_made_once_and_the_winner_of_several_timed_again(run, tmp_path, monkeypatch):
    """The calibration pass quantizes every group the graph has, so the search's all-groups candidate
    is that file, and the gate's file is the chosen candidate copied: none is made again (byte for
    byte the same as quantizing again from the cached ranges). The fastest of several timings is
    biased upward, so the gate times the chosen file again; a candidate timed alone keeps its figures."""
    import filecmp

    import gen.export.int8 as int8

    made, timed, real_quantize, real_measure = [], [], int8._quantize, int8._measure

    def quantize(plan, groups, out, options, feeds=None, symmetric=False):
        made.append(groups)
        nodes = real_quantize(plan, groups, out, options, feeds=feeds, symmetric=symmetric)
        if feeds is not None:  # the calibration pass: the same quantization from the cache must match it
            real_quantize(plan, groups, tmp_path / "again.onnx", options)
            assert filecmp.cmp(out, tmp_path / "again.onnx", shallow=False)
        return nodes

    monkeypatch.setattr(int8, "_quantize", quantize)
    monkeypatch.setattr(int8, "_measure", lambda c, plan, threshold: (timed.append(c.groups), real_measure(c, plan, threshold)))
    cases = (((), [("conv", "linear"), ("conv",), ("linear",)], 3 + 1), (("conv",), [("conv",)], 1))
    for pinned, quantized, measured in cases:
        made.clear(), timed.clear()
        out = export_run(str(run), str(tmp_path / f"b{len(pinned)}"), precisions=("fp32", "int8"),
                         int8=Int8Options(calibration=8, min_psnr=0, min_speedup=0, groups=pinned), **QUIET)
        assert made == quantized and len(timed) == measured  # the search's, then the gate's unless alone
        record = load_bundle(out).manifest.parity["denoiser"]["ort_int8_vs_fp32"]
        chosen = next(c for c in record["candidates"] if c["groups"] == record["groups"])
        assert record["psnr_db"] == chosen["psnr_db"]  # the same file: the same deterministic error
        if pinned:
            assert record["speedup_per_call"] == chosen["speedup_per_call"]


def test_a_candidate_is_reused_only_with_the_float_kept_nodes_it_was_made_with(tmp_path):
    """A gate round (of this precision or one gated before it) that keeps more nodes float makes the
    search's file stale: it is quantized again, not copied."""
    from gen.export.int8 import Candidate, Plan, _reusable

    plan = Plan("denoiser", tmp_path / "denoiser.onnx", excluded=["/a"])
    plan.best = Candidate(("conv",), tmp_path / "c.onnx", excluded=("/a",))
    assert _reusable(plan, symmetric=False) and not _reusable(plan, symmetric=True)
    plan.excluded.append("/b")
    assert not _reusable(plan, symmetric=False)


def test_a_gate_that_keeps_every_quantized_layer_float_refuses_int8_as_changing_nothing(run, tmp_path):
    """The gate keeps layers float round by round; once a component has none left it is float, and
    a bundle with no int8 layer left is refused (not blamed on --int8-exclude, which left two)."""
    options = Int8Options(calibration=8, min_psnr=200, min_speedup=0, groups=("conv",), exclude=("/unet/[!c]*",))
    lines = []
    with pytest.raises(GenError, match=r"until every quantized layer is kept float, so int8 would change nothing"):
        export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8"), int8=options, progress=lines.append)
    assert any("2 nodes" in line for line in lines)  # conv_in and conv_out were left to quantize
    assert sum("images int8 vs fp32" in line for line in lines) == 2  # then kept float one per round
    assert list(tmp_path.iterdir()) == []


def test_a_component_slower_than_the_rule_once_gated_ships_float(run, tmp_path, monkeypatch):
    """--int8-min-speedup holds for the file that ships: the search's figure passed, but the gated
    file timed again falls short (kept-float layers add conversions; the search's winner read high),
    so the component is float, and with no int8 left the export is refused. Timings are set here
    (a 2-core box cannot make them on demand); the quantization, gate and files are real."""
    from gen.export import int8

    real = int8._measure

    def measure(c, plan, threshold):
        real(c, plan, threshold)
        pin(c, 5.0 if c.path.parent.name == ".int8-work" else 0.5, threshold)  # search candidates vs the shipped file

    monkeypatch.setattr(int8, "_measure", measure)
    lines = []
    with pytest.raises(GenError, match=r"int8 \(int8\) does not pay here once gated \(denoiser: int8 does not pay here as "
                                       r"gated \(0 layer\(s\) kept float\): it ran at 0.50x \(90% interval 0.50-0.50, 5 "
                                       r"blocks\): not faster than 1.1x fp32 per call \(--int8-min-speedup 1.1\)\)"):
        export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8"), progress=lines.append,
                   int8=Int8Options(calibration=4, min_psnr=0))  # several candidates: the winner is timed again
    assert any("denoiser int8: kept float" in line for line in lines)
    assert list(tmp_path.iterdir()) == []


def test_of_two_components_the_one_too_slow_once_gated_ships_float_and_the_images_are_checked_again(bundles, tmp_path,
                                                                                                  monkeypatch):
    from gen.export import int8

    real = int8._measure

    def measure(c, plan, threshold):  # the synthesis net's gated file, timed again (it had several candidates), falls short
        real(c, plan, threshold)
        pin(c, 5.0 if c.path.parent.name == ".int8-work" or plan.name == "mapping" else 0.5, threshold)

    monkeypatch.setattr(int8, "_measure", measure)
    lines = []
    run = Path(bundles["stylegan"]).parent / "run-stylegan"
    out = export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8"), progress=lines.append,
                     int8=Int8Options(calibration=4, min_psnr=0))
    m = json.loads((Path(out) / "gen.json").read_text())
    files = {c: v["files"] for c, v in m["components"].items()}
    assert files["synthesis"]["int8"] == files["synthesis"]["fp32"] and files["mapping"]["int8"]["path"] == "mapping.int8.onnx"
    assert not (Path(out) / "synthesis.int8.onnx").exists()
    assert "kept_float" in m["parity"]["synthesis"]["ort_int8_vs_fp32"]
    assert any("images int8 vs fp32, with synthesis float" in line for line in lines)
    shipped = m["parity"]["images_int8_vs_fp32"]  # the images of what ships, synthesis float
    a = Sampler(out, precision="fp32").generate(**{k: v for k, v in shipped.items() if k in ("n", "seed")})
    b = Sampler(out, precision="int8").generate(**{k: v for k, v in shipped.items() if k in ("n", "seed")})
    assert abs(float(np.abs(a - b).max()) - shipped["max_abs"]) < 1e-6


def test_an_exclude_pattern_that_matches_nothing_is_refused(run, tmp_path):
    lines = []
    with pytest.raises(GenError, match=r"--int8-exclude \*nomatch\* matches no quantizable node; node names look like /"):
        export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8"), progress=lines.append,
                   int8=Int8Options(calibration=4, min_psnr=0, min_speedup=0, exclude=("/unet/conv_in*", "*nomatch*")))
    assert list(tmp_path.iterdir()) == []
    assert not any("calibrat" in line for line in lines), lines  # refused before the slow part


def test_a_discrete_code_sampler_fails_the_gate_at_once_naming_why(bundles, tmp_path):
    """A VQ-VAE prior draws codes: keeping layers float cannot stop a flipped draw from changing the
    rest, so the gate does not try, and says how to ship int8 anyway."""
    prior_run = Path(bundles["vqvae-prior"]).parent / "run-vqvae-prior"
    lines = []
    with pytest.raises(GenError, match=r"A vqvae bundle samples discrete codes.*--int8-min-psnr 0.*gen eval BUNDLE --precision int8"):
        export_run(str(prior_run), str(tmp_path / "b"), precisions=("fp32", "int8"), progress=lines.append,
                   int8=Int8Options(calibration=8, min_psnr=200, min_speedup=0, groups=("linear",)))
    assert sum("images int8 vs fp32" in line for line in lines) == 1  # no rounds of keeping layers float


def test_excluded_layers_stay_float_and_are_recorded(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --out, and nothing may be dropped into the working directory
    options = Int8Options(calibration=8, min_psnr=0, min_speedup=0, exclude=("*conv_in*", "*conv_out*"))
    out = export_run(str(run), "b", precisions=("fp32", "int8", "int8-trt"), int8=options, **QUIET)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    # the TensorRT variant: symmetric int8 activations, every zero point 0
    trt = onnx.load(str(out / "denoiser.int8-trt.onnx"))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in trt.graph.initializer}
    zero_points = [inits[n.input[2]] for n in trt.graph.node if n.op_type == "QuantizeLinear"]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    assert Sampler(str(out), precision="int8-trt").generate(n=2, steps=4).shape == (2, 1, 8, 8)
    m = json.loads((out / "gen.json").read_text())
    kept = m["parity"]["denoiser"]["ort_int8_vs_fp32"]["kept_float_nodes"]
    assert kept == ["/unet/conv_in/Conv", "/unet/conv_out/Conv"]
    model = onnx.load(str(out / "denoiser.int8.onnx"))
    produced_by = {o: n.op_type for n in model.graph.node for o in n.output}
    conv_in = next(n for n in model.graph.node if n.name == "/unet/conv_in/Conv")
    assert produced_by.get(conv_in.input[1]) != "DequantizeLinear"  # its weights stayed float


def test_int8_that_does_not_pay_is_refused_with_the_figures(run, tmp_path):
    with pytest.raises(GenError, match=r"int8 would change nothing in this bundle \(denoiser: int8 does not pay here: "
                                       r"the fastest, .*, ran at .*x fp32 per call \(--int8-min-speedup 100"):
        export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8"),
                   int8=Int8Options(calibration=4, min_speedup=100), **QUIET)
    assert list(tmp_path.iterdir()) == []


def test_failed_calibration_is_a_clear_error(run, tmp_path, monkeypatch):
    import gen.export.calibration as calibration

    def bad_records(*args, **kwargs):  # calls the model cannot run: the calibrator itself fails
        return {"denoiser": [{"sample": np.zeros((1, 1, 8, 8), np.float32)}] * 4}

    monkeypatch.setattr(calibration, "record_calibration", bad_records)
    with pytest.raises(GenError, match="int8 calibration of denoiser failed: .*; nothing was written"):
        export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8"), int8=Int8Options(calibration=4), **QUIET)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options,message", [
    ({"calibration": 0}, "--calibration must be at least 1 image, got 0"),
    ({"method": "kl"}, "--calibration-method must be one of minmax, entropy, percentile, got 'kl'"),
    ({"min_psnr": float("nan")}, "--int8-min-psnr must be a finite number"),
    ({"min_speedup": -1}, "--int8-min-speedup must be a finite number in"),
])
def test_bad_int8_options_are_refused_before_any_work(run, tmp_path, options, message):
    with pytest.raises(GenError, match=message):
        export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8"), int8=Int8Options(**options), **QUIET)
    assert list(tmp_path.iterdir()) == []


def test_recording_backend_keeps_copies_of_each_feed(bundles):
    bundle = load_bundle(bundles["gan"])
    backend = RecordingBackend(bundle)
    Sampler(str(bundles["gan"]), backend=backend).generate(n=3, seed=0)
    (z,) = [c["z"] for c in backend.recorded["generator"]]
    assert z.shape[0] == 3 and np.isfinite(z).all()


def test_gen_eval_scores_a_bundles_int8_files_and_writes_nothing_into_it(bundles, run):
    from gen.trainkit.eval.evaluate import evaluate_run

    before = sorted(p.name for p in bundles["cddpm"].iterdir())
    fp32 = evaluate_run(str(bundles["cddpm"]), n=20, steps=5)
    int8 = evaluate_run(str(bundles["cddpm"]), n=20, steps=5, precision="int8")
    assert int8["sampler"] == "bundle files, ort backend, int8" and fp32["sampler"].endswith("fp32")
    assert int8["metrics"]["fd_digits"] != fp32["metrics"]["fd_digits"]  # other files, other images
    assert abs(int8["metrics"]["label_accuracy"] - fp32["metrics"]["label_accuracy"]) <= 0.2
    assert sorted(p.name for p in bundles["cddpm"].iterdir()) == before
    with pytest.raises(GenError, match="--backend and --precision choose a bundle's files"):
        evaluate_run(str(run), n=10, precision="int8")


def test_int8_trt_is_gated_on_images_not_on_cpu_speed(run, tmp_path, monkeypatch):
    """TensorRT's symmetric form runs slower than u8 on CPU ORT; that says nothing of TensorRT, so only
    the int8 file answers to --int8-min-speedup (timings pinned here: the rule is under test)."""
    import gen.export.int8 as int8

    measure = int8._measure

    def pinned(c, plan, threshold):
        measure(c, plan, threshold)
        pin(c, 0.5 if "int8-trt" in c.path.name else 2.0, threshold)

    monkeypatch.setattr(int8, "_measure", pinned)
    out = export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8", "int8-trt"),
                     int8=Int8Options(calibration=8, min_psnr=0, min_speedup=1.1), **QUIET)
    parity = json.loads((out / "gen.json").read_text())["parity"]["denoiser"]
    assert (out / "denoiser.int8-trt.onnx").is_file() and (out / "denoiser.int8.onnx").is_file()
    assert parity["ort_int8-trt_vs_fp32"]["speedup_per_call"] == 0.5 and "not speed-gated" in parity["ort_int8-trt_vs_fp32"]["speedup_note"]
    assert "kept_float" not in parity["ort_int8-trt_vs_fp32"] and "speedup_note" not in parity["ort_int8_vs_fp32"]


def test_an_int8_speed_up_too_noisy_to_tell_is_undecided_and_writes_nothing(run, tmp_path, monkeypatch):
    """Blocks that straddle --int8-min-speedup (as on busy cores) neither ship int8 nor call it slower:
    the export says the timing is undecided and to re-run on idle cores, and writes nothing."""
    from gen.export import int8

    real = int8._measure

    def measure(c, plan, threshold):
        real(c, plan, threshold)
        pin(c, [0.8, 1.4, 0.9, 1.5, 1.2, 0.7, 1.6], threshold)  # median 1.2 > 1.1, interval 0.7-1.6

    monkeypatch.setattr(int8, "_measure", measure)
    with pytest.raises(GenError, match=r"int8's speed-up is undecided here .*undecided, too close or too noisy to tell.*"
                                       r"re-run on idle cores"):
        export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8"), int8=Int8Options(calibration=4, min_psnr=0),
                   **QUIET)
    assert list(tmp_path.iterdir()) == []


def test_nncf_int8_for_openvino_is_written_as_ir_recorded_and_gated(run, tmp_path):
    """--int8-openvino: NNCF quantizes the denoiser on the recorded feeds, the IR and its weights are
    named in gen.json (size and sha256), the openvino backend runs it near fp32, ORT refuses it."""
    pytest.importorskip("nncf", reason="NNCF is not installed (pip install 'gen[openvino-int8]')")
    from gen.runtime.quality import psnr

    out = export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8-ov"),
                     int8=Int8Options(calibration=4, min_psnr=20, min_speedup=0, groups=("conv",)), **QUIET)
    m = json.loads((out / "gen.json").read_text())
    entry = m["components"]["denoiser"]["files"]["int8-ov"]
    assert entry["path"] == "denoiser.int8-ov.xml" and entry["external_data"]["path"] == "denoiser.int8-ov.bin"
    record = m["parity"]["denoiser"]["openvino_int8-ov_vs_fp32"]
    assert record["chosen"] == "conv" and record["speed"]["decision"] == "faster" and record["speed"]["blocks"] >= 5
    assert m["parity"]["images_int8-ov_vs_fp32"]["psnr_db"] >= 20
    with Sampler(str(out), backend="ort") as a, Sampler(str(out), backend="openvino", precision="int8-ov") as b:
        assert psnr(a.generate(n=4, seed=0), b.generate(n=4, seed=0)) >= 20
    with pytest.raises(GenError, match="does not run int8-ov on cpu"):
        Sampler(str(out), backend="ort", precision="int8-ov")


@pytest.mark.slow  # a second NNCF export (~8 s); the gate's refusal path is ORT's, tested above, with this wording
def test_nncf_int8_below_the_gate_writes_nothing(run, tmp_path):
    pytest.importorskip("nncf", reason="NNCF is not installed (pip install 'gen[openvino-int8]')")
    with pytest.raises(GenError, match=r"int8 on OpenVINO: images reach .* below the gate --int8-min-psnr 200, with every "
                                       r"candidate tried; nothing was written"):
        export_run(str(run), str(tmp_path / "b"), precisions=("fp32", "int8-ov"),
                   int8=Int8Options(calibration=4, min_psnr=200, min_speedup=0, groups=("conv",)), **QUIET)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, message", [
    (["--int8-openvino"], "--int8-openvino: these options apply only with --int8"),
    (["--int8", "--int8-openvino-only"], "--int8-openvino-only goes with --int8-openvino"),
])
def test_openvino_int8_flags_are_refused_out_of_place(run, tmp_path, flags, message):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "gen", "export", str(run), "--out", str(tmp_path / "b"), *flags],
                       capture_output=True, text=True)
    assert p.returncode == 2 and message in p.stderr and not (tmp_path / "b").exists()


@pytest.mark.parametrize("machine,flags,saturates", [
    ("x86_64", ["avx2", "fma"], True),  # AVX2 only: u8s8 pair sums saturate -> 7-bit weights
    ("x86_64", ["avx2", "avx512f", "avx512bw"], True),
    ("x86_64", ["avx2", "avx512f", "avx512_vnni"], False),
    ("x86_64", ["avx2", "avx_vnni"], False),
    ("aarch64", ["asimd"], False),
])
def test_int8_weights_are_7_bit_only_where_the_cpus_sums_saturate(monkeypatch, machine, flags, saturates):
    import platform

    from gen.export.int8 import reduce_range
    from gen.runtime import host

    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(host, "_cpuinfo", lambda: ("cpu", flags))
    assert host.int8_sums_saturate() is saturates
    assert reduce_range(False) is saturates and reduce_range(True) is False  # TensorRT's symmetric files keep 8 bits


def test_a_gate_round_that_overshoots_gives_the_less_costly_half_back_to_int8():
    """The worst tenth kept float can clear the gate by a wide margin; then the round's less costly half is
    tried in int8 again, kept where the images still pass, put back (and its files rewritten) where not."""
    from types import SimpleNamespace

    from gen.export.int8 import _refine

    added = [("unet", f"/n{i}") for i in range(8)]  # worst first, as the round added them
    plans = {"unet": SimpleNamespace(excluded=[node for _, node in added])}
    options = SimpleNamespace(min_psnr=30.0)
    figures = iter([33.0, 29.0])  # half back: still passes (and by the margin); a quarter more back: fails
    rewrites, notes = [], []

    def check(note=""):
        notes.append(note)
        return {"psnr_db": next(figures)}

    record = _refine({"psnr_db": 35.6}, added, plans, options, check, lambda: rewrites.append(1))
    assert record == {"psnr_db": 33.0} and rewrites == [1]
    assert sorted(plans["unet"].excluded) == ["/n0", "/n1", "/n2", "/n3"]  # the worst half stays float
    assert "4 layer(s) kept float (4 given back to int8)" in notes[0] and "2 layer(s) kept float (2 given back" in notes[1]
    # a narrow pass, or a single layer added, is left as it is
    assert _refine({"psnr_db": 31.0}, added, plans, options, check, lambda: None) == {"psnr_db": 31.0}
    assert _refine({"psnr_db": 40.0}, added[:1], plans, options, check, lambda: None) == {"psnr_db": 40.0}
