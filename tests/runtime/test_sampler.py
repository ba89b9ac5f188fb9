"""The Sampler over eager and ONNX Runtime: same seed, same images; bad input named clearly."""

import json
import shutil

import numpy as np
import pytest

from gen.errors import GenError
from gen.export.onnx_io import psnr
from gen.runtime.sampler import Sampler


@pytest.mark.parametrize("name", ["gan", "cgan", "vae", "ddpm", "cddpm"])
def test_ort_matches_eager_for_every_family(bundles, name):
    kw = {"steps": 50, "scheduler": "ddim"} if "ddpm" in name else {}
    if name == "cddpm":
        kw["guidance"] = 2.0
    eager = Sampler(str(bundles[name]), backend="eager").generate(n=8, seed=0, **kw)
    ort = Sampler(str(bundles[name]), backend="ort").generate(n=8, seed=0, **kw)
    assert eager.shape == (8, 1, 8, 8) and eager.dtype == np.float32
    assert np.abs(eager - ort).max() <= 1e-3
    assert eager.std() > 0.01  # not a constant image


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim", "dpm++", "euler"])
def test_every_scheduler_runs_and_matches_across_backends(bundles, scheduler):
    a = Sampler(str(bundles["ddpm"]), backend="eager").generate(n=4, seed=3, steps=10, scheduler=scheduler)
    b = Sampler(str(bundles["ddpm"]), backend="ort").generate(n=4, seed=3, steps=10, scheduler=scheduler)
    assert np.abs(a - b).max() <= 1e-3


def test_seed_reproducible_and_distinct(bundles):
    s = Sampler(str(bundles["ddpm"]), backend="ort")
    a, b, c = s.generate(n=2, seed=1, steps=5), s.generate(n=2, seed=1, steps=5), s.generate(n=2, seed=2, steps=5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_fp16_matches_fp32(bundles):
    for name, kw in (("gan", {}), ("cddpm", {"steps": 50})):
        a = Sampler(str(bundles[name]), backend="ort", precision="fp32").generate(n=8, seed=0, **kw)
        b = Sampler(str(bundles[name]), backend="ort", precision="fp16").generate(n=8, seed=0, **kw)
        assert psnr(a, b) >= 35.0, name
    manifest = json.loads((bundles["gan"] / "gen.json").read_text())
    assert manifest["parity"]["images_fp16_vs_fp32"]["psnr_db"] >= 35.0


def test_labels_and_guidance_steer_conditional_models(bundles):
    s = Sampler(str(bundles["cgan"]), backend="ort")
    assert not np.array_equal(s.generate(n=2, seed=0, labels=1), s.generate(n=2, seed=0, labels=7))
    d = Sampler(str(bundles["cddpm"]), backend="ort")
    assert not np.array_equal(d.generate(n=2, seed=0, steps=5, guidance=1.0), d.generate(n=2, seed=0, steps=5, guidance=3.0))


def test_outputs(bundles):
    s = Sampler(str(bundles["gan"]), backend="ort")
    u8 = s.generate(n=3, seed=0, output="uint8")
    assert u8.shape == (3, 8, 8, 1) and u8.dtype == np.uint8
    pics = s.generate(n=3, seed=0, output="pil")
    assert len(pics) == 3 and pics[0].size == (8, 8)


@pytest.mark.parametrize("bundle,kwargs,message", [
    ("ddpm", {"steps": 0}, "steps must be at least 1"),
    ("ddpm", {"scheduler": "heun"}, "heun"),
    ("ddpm", {"guidance": 2.0}, "guidance needs a class-conditional model"),
    ("cgan", {"labels": 10}, "label 10 is out of range: this model has classes 0..9"),
    ("cgan", {"labels": [1, 2, 3]}, "expected one label or 2"),
    ("gan", {"labels": 1}, "labels given, but this bundle is unconditional"),
    ("gan", {"steps": 5}, "steps applies to diffusion bundles"),
    ("gan", {"n": 0}, "n must be a positive integer"),
    ("gan", {"output": "tiff"}, "unknown output 'tiff'"),
])
def test_bad_generate_arguments_are_named(bundles, bundle, kwargs, message):
    kwargs = {"n": 2, **kwargs}
    with pytest.raises(GenError, match=message):
        Sampler(str(bundles[bundle]), backend="ort").generate(**kwargs)


def test_bad_backend_device_and_precision(bundles):
    with pytest.raises(GenError, match="unknown backend 'tensorflow'; choose one of eager, ort"):
        Sampler(str(bundles["gan"]), backend="tensorflow")
    with pytest.raises(GenError, match="unknown device 'tpu'"):
        Sampler(str(bundles["gan"]), device="tpu")
    with pytest.raises(GenError, match="has no fp16 generator"):
        Sampler(str(bundles["cgan"]), precision="fp16").generate(n=1)


def test_backend_validates_inputs_in_one_place(bundles):
    s = Sampler(str(bundles["ddpm"]), backend="ort")
    x = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(GenError, match="denoiser.timestep: dtype float32, expected int64"):
        s.backend.run("denoiser", {"sample": x, "timestep": np.zeros(2, np.float32)})
    with pytest.raises(GenError, match=r"denoiser.sample: shape \[2, 1, 4, 4\]"):
        s.backend.run("denoiser", {"sample": np.zeros((2, 1, 4, 4), np.float32), "timestep": np.zeros(2, np.int64)})
    with pytest.raises(GenError, match="missing inputs \\['timestep'\\]"):
        s.backend.run("denoiser", {"sample": x})
    with pytest.raises(GenError, match="batch size 3 does not match"):
        s.backend.run("denoiser", {"sample": x, "timestep": np.zeros(3, np.int64)})


def test_ort_reports_the_providers_that_really_run(bundles):
    d = Sampler(str(bundles["gan"]), backend="ort", threads=1).backend.describe()
    assert d["providers"] == {"generator": ["CPUExecutionProvider"]} and d["threads"] == 1


def _copy(bundles, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(bundles[name], dst)
    return dst


def test_damaged_bundles_are_refused_clearly(bundles, tmp_path):
    b = _copy(bundles, "ddpm", tmp_path)
    onnx_file = b / "denoiser.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    with pytest.raises(GenError, match="denoiser.onnx is truncated or modified"):
        Sampler(str(b))
    onnx_file.unlink()
    with pytest.raises(GenError, match="file is missing"):
        Sampler(str(b))

    b = _copy(bundles, "gan", tmp_path)
    m = json.loads((b / "gen.json").read_text())
    (b / "gen.json").write_text(json.dumps({**m, "schema_version": 99}))
    with pytest.raises(GenError, match="schema_version 99, newer than this gen understands"):
        Sampler(str(b))
    m["components"]["generator"]["files"]["fp32"]["path"] = "../../etc/passwd"
    (b / "gen.json").write_text(json.dumps(m))
    with pytest.raises(GenError, match="names a file outside the bundle"):
        Sampler(str(b))
    (b / "gen.json").write_text("{ not json")
    with pytest.raises(GenError, match="not valid JSON"):
        Sampler(str(b))
    with pytest.raises(GenError, match="bundle not found"):
        Sampler(str(tmp_path / "nothing"))


def test_same_size_corruption_is_caught_at_load(bundles, tmp_path):
    """Was caught by onnxruntime at the first call; the manifest's sha256 now refuses it at load."""
    b = _copy(bundles, "vae", tmp_path)
    f = b / "decoder.onnx"
    f.write_bytes(b"\x00" * f.stat().st_size)
    with pytest.raises(GenError, match="decoder.onnx is corrupt or modified"):
        Sampler(str(b)).generate(n=1)


def test_top_level_import_is_lazy_and_exposes_the_sampler():
    import subprocess
    import sys

    code = ("import sys, gen; assert 'gen.runtime.sampler' not in sys.modules; "
            "from gen import Sampler; from gen.runtime.sampler import Sampler as S; assert Sampler is S; "
            "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
