"""Per-host plans: `gen tune` measures and writes one, `Sampler(bundle)` uses it and says so, and a
plan from another host, an older export or a damaged file is ignored with a message, never applied."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gen.runtime.bundle import load_bundle
from gen.runtime.host import fingerprint
from gen.runtime.plan import PLANS, PlannedBackend, load_plan, manifest_digest, write_plan
from gen.runtime.sampler import Sampler

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install 'gen[openvino]')")
FIXTURE = Path(__file__).parents[1] / "fixtures" / "bundle-v1-cddpm"
GEN = [sys.executable, "-m", "gen"]


@pytest.fixture
def bundle_dir(tmp_path):
    out = tmp_path / "cddpm"
    shutil.copytree(FIXTURE, out)
    return out


def hand_plan(bundle, choices: dict, host=None) -> dict:
    """A plan file as gen tune writes one, with the choices given (the tests pin what to run)."""
    return {"schema": 1, "host": host or fingerprint(), "bundle_manifest_sha256": manifest_digest(bundle), "threads": 1,
            "components": {c: {"backend": b, "precision": p} for c, (b, p) in choices.items()}}


def test_gen_tune_measures_writes_this_hosts_plan_and_the_sampler_uses_it(bundle_dir):
    with Sampler(bundle_dir) as s:
        assert type(s.backend).__name__ == "OrtBackend" and s.plan_note.startswith("no plan for this host (run `gen tune")
    p = subprocess.run([*GEN, "tune", str(bundle_dir), "--n", "2", "--steps", "4", "--threads", "1", "--max-seconds", "10"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "timing denoiser on ort/fp32, openvino/fp32" in p.stdout and "90% interval" in p.stdout
    path = bundle_dir / PLANS / f"{fingerprint()['id']}.json"
    assert f"plan: {path}" in p.stdout
    plan = json.loads(path.read_text())
    assert plan["host"]["id"] == fingerprint()["id"] and set(plan["end_to_end"]) == {"openvino/fp32"}
    assert plan["quality_psnr_db"]["openvino/fp32"] > 30 and "others_cores" in plan["load"]
    assert plan["verdict"].startswith(("kept ort/fp32", "chose openvino/fp32"))
    with Sampler(bundle_dir) as s:
        chosen = plan["components"]["denoiser"]["backend"]
        assert s.backend.name == chosen and s.plan_note.startswith(f"plan for this host ({path.name}): denoiser {chosen}/fp32")


def test_a_plan_choosing_openvino_runs_it(bundle_dir):
    bundle = load_bundle(bundle_dir)
    write_plan(bundle, hand_plan(bundle, {"denoiser": ("openvino", "fp32")}))
    with Sampler(bundle_dir) as s:
        assert s.backend.name == "openvino"
        s.generate(n=2, steps=2)
    with Sampler(bundle_dir, backend="ort") as s:  # a named backend is not overridden by the plan
        assert s.backend.name == "ort" and s.plan_note is None


def test_a_plan_from_another_host_is_ignored_naming_what_differs(bundle_dir):
    bundle = load_bundle(bundle_dir)
    other = {**fingerprint(), "cpu": "Some Other CPU", "cores": 64, "id": "0123456789ab"}
    write_plan(bundle, hand_plan(bundle, {"denoiser": ("openvino", "fp32")}, host=other))
    with Sampler(bundle_dir) as s:
        assert s.backend.name == "ort"
        assert "ignored 1 plan(s) measured on other hosts (0123456789ab.json: cpu 'Some Other CPU' there" in s.plan_note
        assert "cores 64 there" in s.plan_note and "running ort fp32" in s.plan_note


@pytest.mark.parametrize("damage, message", [
    (lambda path, bundle: path.write_text("{not json"), "is damaged (JSONDecodeError); re-run gen tune"),
    (lambda path, bundle: path.write_text(json.dumps({"schema": 9})), "is not a gen plan of schema 1"),
    (lambda path, bundle: path.write_text(json.dumps(hand_plan(bundle, {"denoiser": ("nope", "fp32")}))),
     "names no backend/precision gen knows"),
    (lambda path, bundle: path.write_text(json.dumps(hand_plan(bundle, {"unet": ("ort", "fp32")}))),
     "plans components ['unet'], the bundle has ['denoiser']"),
    (lambda path, bundle: path.write_text(json.dumps({**hand_plan(bundle, {"denoiser": ("openvino", "fp32")}),
                                                      "bundle_manifest_sha256": "0" * 64})),
     "measured on an earlier export of this bundle"),
])
def test_a_damaged_or_stale_plan_is_ignored_with_the_reason(bundle_dir, damage, message):
    bundle = load_bundle(bundle_dir)
    path = write_plan(bundle, hand_plan(bundle, {"denoiser": ("openvino", "fp32")}))
    damage(path, bundle)
    loaded = load_plan(bundle)
    assert loaded.plan is None and message in loaded.note, loaded.note
    with Sampler(bundle_dir) as s:
        assert s.backend.name == "ort" and s.plan_note == loaded.note


def test_a_mixed_plan_runs_each_component_where_it_chose(bundles, tmp_path):
    out = tmp_path / "stylegan"
    shutil.copytree(bundles["stylegan"], out)
    bundle = load_bundle(out)
    assert set(bundle.components) == {"mapping", "synthesis"}
    write_plan(bundle, hand_plan(bundle, {"mapping": ("ort", "fp32"), "synthesis": ("openvino", "fp32")}))
    with Sampler(out) as s, Sampler(out, backend="ort") as ref:
        assert isinstance(s.backend, PlannedBackend)
        assert s.backend.describe()["components"] == {"mapping": "ort/fp32", "synthesis": "openvino/fp32"}
        from gen.runtime.quality import psnr

        assert psnr(ref.generate(n=2, seed=1), s.generate(n=2, seed=1)) > 60


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n must be from 1 to 256, got 0"),
    (["--min-psnr", "nan"], "--min-psnr must be from 0 to 200, got nan"),
    (["--max-seconds", "1"], "--max-seconds must be from 10 to 3600, got 1.0"),
    (["--backends", "eager"], "--backends takes ort and/or openvino"),
])
def test_gen_tune_refuses_bad_settings_before_timing(bundle_dir, args, message):
    p = subprocess.run([*GEN, "tune", str(bundle_dir), *args], capture_output=True, text=True)
    assert p.returncode == 2 and __import__("re").search(message, p.stderr), p.stderr
    assert not (bundle_dir / PLANS).exists()


def test_bench_times_the_plan_beside_the_others_and_records_the_load(bundle_dir, tmp_path):
    out = tmp_path / "bench.json"
    p = subprocess.run([*GEN, "bench", str(bundle_dir), "--backends", "ort,auto", "--steps", "2", "--batch", "2",
                        "--repeats", "2", "--warmup", "1", "--threads", "1", "--json", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "auto: no plan for this host" in p.stdout
    result = json.loads(out.read_text())
    auto = next(r for r in result["rows"] if r["backend"] == "auto")
    assert auto["precision"] == "plan" and "busy" in auto and auto["load"]["before"]["loadavg"]
    assert "iqr_ms" in auto["end_to_end"] and "wide_spread" in auto["end_to_end"]
    assert result["environment"]["versions"]["openvino"]


def test_serve_build_carries_this_hosts_plan_into_the_pipeline(bundle_dir, tmp_path):
    from gen.serving.repository import build_repository

    bundle = load_bundle(bundle_dir)
    path = write_plan(bundle, hand_plan(bundle, {"denoiser": ("openvino", "fp32")}))
    lines = []
    repo = build_repository([str(bundle_dir)], str(tmp_path / "repo"), log=lines.append)
    config = (repo / "cddpm" / "config.pbtxt").read_text()
    assert 'parameters { key: "backend" value: { string_value: "auto" } }' in config
    assert (repo / "cddpm" / "1" / PLANS / path.name).read_text() == path.read_text()
    assert lines == [f"cddpm: plan for this host ({path.name}): denoiser openvino/fp32"]
    served = load_bundle(repo / "cddpm" / "1")  # the pipeline's own view of its files finds the plan as its own
    assert load_plan(served).plan is not None
    repo = build_repository([str(bundle_dir)], str(tmp_path / "repo2"), precision="fp32")  # a precision named: no plan
    assert 'parameters { key: "backend" value: { string_value: "ort" } }' in (repo / "cddpm" / "config.pbtxt").read_text()


def test_export_force_replaces_a_bundle_with_plans(bundles, tmp_path):
    """plans/ is gen's own (gen tune wrote it), so --force may replace a bundle that has one."""
    from gen.export.onnx_export import export_run

    run = Path(bundles["gan"]).parent / "run-gan"
    out = export_run(str(run), str(tmp_path / "gan"), progress=lambda *_: None)
    bundle = load_bundle(out)
    write_plan(bundle, hand_plan(bundle, {"generator": ("ort", "fp32")}))
    export_run(str(run), str(out), force=True, progress=lambda *_: None)
    assert not (Path(out) / PLANS).exists()  # measured on the old export: gone with it


def test_an_uninstalled_backend_in_a_plan_falls_back_with_the_reason(bundle_dir):
    code = ("import sys; sys.modules['openvino'] = None\n"
            "from gen.runtime.sampler import Sampler\n"
            f"s = Sampler({str(bundle_dir)!r}); print(s.backend.name); print(s.plan_note)")
    bundle = load_bundle(bundle_dir)
    write_plan(bundle, hand_plan(bundle, {"denoiser": ("openvino", "fp32")}))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, note = p.stdout.splitlines()
    assert name == "ort" and "needs OpenVINO, which is not installed" in note and note.endswith("running ort fp32")
