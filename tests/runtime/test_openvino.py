"""The OpenVINO backend on real bundles: parity with ONNX Runtime, static-shape compiles and their
cache, what really ran, and the refusals (bf16 without bf16 instructions, fp16, missing int8, no OpenVINO)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gen.errors import GenError
from gen.runtime.backends import create_backend
from gen.runtime.bundle import load_bundle
from gen.runtime.quality import psnr
from gen.runtime.sampler import Sampler

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install 'gen[openvino]')")
FIXTURE = Path(__file__).parents[1] / "fixtures" / "bundle-v1-cddpm"


@pytest.fixture
def bundle():
    return load_bundle(FIXTURE)


def test_a_call_matches_onnx_runtime_and_reports_what_ran(bundle):
    feeds = bundle.spec.example_feeds(bundle, "denoiser", 4)
    with create_backend("ort", bundle, threads=2) as ort, create_backend("openvino", bundle, threads=2) as ov:
        a, b = ort.run("denoiser", feeds), ov.run("denoiser", feeds)
        assert np.abs(a - b).max() < 1e-4
        d = ov.describe()
    assert d["backend"] == "openvino" and d["precision"] == "fp32" and d["threads"] == 2
    assert d["inference_precision"] == ["float32"] and d["compiles"][0]["compile_s"] > 0
    assert d["compiles"][0]["shapes"]["sample"] == [4, 1, 8, 8]


def test_each_shape_is_compiled_once_and_only_a_few_are_kept(bundle):
    from gen.runtime.backends.openvino import SHAPES_KEPT

    with create_backend("openvino", bundle, threads=1) as ov:
        for n in (1, 2, 1, 2):
            ov.run("denoiser", bundle.spec.example_feeds(bundle, "denoiser", n))
        assert [c["shapes"]["sample"][0] for c in ov.compiles] == [1, 2]  # the repeats reused their compiles
        for n in range(3, 4 + SHAPES_KEPT):
            ov.run("denoiser", bundle.spec.example_feeds(bundle, "denoiser", n))
        assert len(ov._compiled["denoiser"]) == SHAPES_KEPT


def test_images_through_the_sampler_match_onnx_runtime_from_the_same_seed():
    with Sampler(FIXTURE, backend="ort", threads=2) as a, Sampler(FIXTURE, backend="openvino", threads=2) as b:
        assert psnr(a.generate(n=4, seed=3, steps=8), b.generate(n=4, seed=3, steps=8)) > 60


def test_openvino_keeps_its_compiled_models_in_gens_cache_directory(tmp_path):
    """Compiled models land in GEN_CACHE_DIR/openvino (where a second process reads them back), and a
    second process starts from that cache."""
    code = ("import sys; from gen.runtime.backends import create_backend; from gen.runtime.bundle import load_bundle; "
            f"b = load_bundle({str(FIXTURE)!r}); ov = create_backend('openvino', b, threads=1); "
            "ov.run('denoiser', b.spec.example_feeds(b, 'denoiser', 3)); print(ov.compiles[0]['compile_s'])")
    env = {**__import__("os").environ, "GEN_CACHE_DIR": str(tmp_path)}
    run = lambda: float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)  # noqa: E731
    run()
    blobs = sorted((tmp_path / "openvino").iterdir())
    assert blobs  # the blob OpenVINO wrote
    run()
    assert sorted((tmp_path / "openvino").iterdir()) == blobs  # read back, not compiled and written again


def test_refusals_name_the_precision_and_the_fix(bundle):
    from gen.runtime.backends.openvino import cpu_capabilities, shared_core

    with pytest.raises(GenError, match="fp16 files are for GPUs"):
        create_backend("openvino", bundle, precision="fp16")
    with pytest.raises(GenError, match="does not run on device 'cuda'"):
        create_backend("openvino", bundle, device="cuda")
    with create_backend("openvino", bundle, precision="int8") as ov, pytest.raises(GenError, match="re-export with --int8"):
        ov.run("denoiser", bundle.spec.example_feeds(bundle, "denoiser", 1))
    if "BF16" not in cpu_capabilities(shared_core()):
        with pytest.raises(GenError, match="no bfloat16 instructions .* bf16 would quietly run f32"):
            create_backend("openvino", bundle, precision="bf16")
        with pytest.raises(GenError, match="no bfloat16 instructions .* int8-bf16 would quietly run f32"):
            create_backend("openvino", bundle, precision="int8-bf16")
    else:  # a CPU with bf16: it runs, and says so (as OpenVINO names it)
        with create_backend("openvino", bundle, precision="bf16") as ov:
            ov.run("denoiser", bundle.spec.example_feeds(bundle, "denoiser", 1))
            assert ov.compiles[0]["inference_precision"] == "bfloat16"


def test_without_openvino_the_backend_names_the_extra_to_install():
    code = ("import sys; sys.modules['openvino'] = None\n"
            "from gen.runtime.sampler import Sampler\n"
            f"Sampler({str(FIXTURE)!r}, backend='openvino')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode != 0 and "backend 'openvino' needs OpenVINO, which is not installed: pip install 'gen[openvino]'" in p.stderr


def test_int8_files_run_on_openvino_close_to_fp32(bundles):
    """The bundle's int8 QDQ file (made for ORT) runs on OpenVINO's int8 kernels, near its fp32 images."""
    with Sampler(bundles["cddpm"], backend="openvino", precision="fp32", threads=2) as a, \
            Sampler(bundles["cddpm"], backend="openvino", precision="int8", threads=2) as b:
        assert psnr(a.generate(n=4, seed=0, steps=10), b.generate(n=4, seed=0, steps=10)) > 20


def test_int8_bf16_runs_the_int8_file_with_its_float_nodes_in_bf16(bundles):
    from gen.runtime.backends.openvino import cpu_capabilities, shared_core

    if "BF16" not in cpu_capabilities(shared_core()):
        pytest.skip("this CPU has no bfloat16 instructions (the refusal is tested above)")
    with Sampler(bundles["cddpm"], backend="openvino", precision="fp32", threads=2) as a, \
            Sampler(bundles["cddpm"], backend="openvino", precision="int8-bf16", threads=2) as b:
        assert psnr(a.generate(n=4, seed=0, steps=10), b.generate(n=4, seed=0, steps=10)) > 20
        ran = b.backend.describe()
        assert ran["inference_precision"] == ["bfloat16"] and ran["precision"] == "int8-bf16"
