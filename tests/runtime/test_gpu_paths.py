"""The GPU paths' CPU-testable parts: TensorRT profiles and engine-cache keys from manifests, the
refusals where a GPU, onnxruntime-gpu or TensorRT is absent, and the torch.compile backend's parity
with eager (on CPU; CUDA graphs need a GPU). The GPU runs themselves: benchmarks/gpu_check.sh."""

import dataclasses
import importlib.util

import numpy as np
import pytest

from gen.errors import GenError
from gen.runtime.bundle import load_bundle
from gen.runtime.engines import check_engine_key, engine_key, profile_for
from gen.runtime.sampler import Sampler

HOST = {"tensorrt": "10.13.0", "cuda": "12.8", "gpu": "NVIDIA H200", "compute_capability": "9.0"}
HAS_CUDA = importlib.util.find_spec("torch") is not None and __import__("torch").cuda.is_available()


def test_profiles_come_from_the_manifest(bundles, sd_bundle):
    ddpm = load_bundle(bundles["ddpm"])
    n = ddpm.spec.limits_for(ddpm).n
    assert profile_for(ddpm, "denoiser") == {"sample": [[1, 1, 8, 8], [1, 1, 8, 8], [n, 1, 8, 8]],
                                             "timestep": [[1], [1], [n]]}
    guided = load_bundle(bundles["cddpm"])  # classifier-free guidance doubles the batch
    assert profile_for(guided, "denoiser")["class_labels"] == [[1], [2], [2 * guided.spec.limits_for(guided).n]]
    sd = load_bundle(sd_bundle)
    n, side = sd.spec.limits_for(sd).n, sd.image.height  # 64 px native, latents / 8, UNet stride 2
    unet = profile_for(sd, "unet")
    assert unet["sample"] == [[1, 4, 4, 4], [2, 4, 8, 8], [2 * n, 4, 16, 16]]  # half to twice the native side
    assert unet["encoder_hidden_states"] == [[1, 77, 64], [2, 77, 64], [2 * n, 77, 64]]
    assert profile_for(sd, "vae_encoder")["sample"] == [[1, 3, side // 2, side // 2], [2, 3, side, side],
                                                        [2 * n, 3, 2 * side, 2 * side]]


def test_the_engine_key_changes_with_each_input_and_only_then():
    profile = {"sample": [[1, 4, 4, 4], [2, 4, 8, 8], [32, 4, 16, 16]]}
    base = engine_key("ab" * 32, "fp16", profile, HOST)
    assert engine_key("ab" * 32, "fp16", {"sample": [list(s) for s in profile["sample"]]}, dict(HOST)).digest() == base.digest()
    variants = [engine_key("cd" * 32, "fp16", profile, HOST), engine_key("ab" * 32, "fp32", profile, HOST),
                engine_key("ab" * 32, "fp16", {"sample": [[1, 4, 4, 4], [2, 4, 8, 8], [64, 4, 16, 16]]}, HOST)]
    variants += [engine_key("ab" * 32, "fp16", profile, {**HOST, k: v}) for k, v in
                 (("tensorrt", "11.0.0"), ("cuda", "13.0"), ("gpu", "NVIDIA H100 80GB HBM3"), ("compute_capability", "8.0"))]
    digests = {v.digest() for v in variants}
    assert len(digests) == len(variants) and base.digest() not in digests
    assert base.file_name("unet") == f"unet-fp16-{base.digest()[:16]}.engine"


@pytest.mark.parametrize("field,value,named", [("gpu", "NVIDIA A100-SXM4-80GB", "GPU 'NVIDIA A100-SXM4-80GB' here 'NVIDIA H200'"),
                                               ("tensorrt", "10.0.1", "TensorRT version '10.0.1' here '10.13.0'"),
                                               ("compute_capability", "8.0", "compute capability '8.0' here '9.0'")])
def test_an_engine_built_elsewhere_is_refused_naming_the_fix(field, value, named):
    key = engine_key("ab" * 32, "fp16", {"x": [[1], [1], [4]]}, HOST)
    recorded = {**dataclasses.asdict(key), field: value}
    with pytest.raises(GenError) as e:
        check_engine_key(recorded, key, "bundle/trt/unet.engine")
    assert named in str(e.value) and "gen export BUNDLE --trt --force" in str(e.value)
    check_engine_key(dataclasses.asdict(key), key, "same")  # its own key passes
    other_profile = {**dataclasses.asdict(key), "profile": "{}"}
    check_engine_key(other_profile, key, "shipped", host_only=True)  # not a host mismatch: built in the cache
    with pytest.raises(GenError, match="shape profile"):
        check_engine_key(other_profile, key, "shipped")


def test_shapes_outside_the_profile_are_refused_naming_the_range(sd_bundle):
    from gen.runtime.engines import check_in_profile

    sd = load_bundle(sd_bundle)
    profile = profile_for(sd, "unet")
    check_in_profile("unet", profile, {"sample": (2, 4, 8, 12)})
    with pytest.raises(GenError, match=r"input sample of shape \[2, 4, 8, 256\] is outside .* \[1, 4, 4, 4\] .. "):
        check_in_profile("unet", profile, {"sample": (2, 4, 8, 256)})


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_trt_without_tensorrt_names_what_to_install(bundles, tmp_path):
    with pytest.raises(GenError, match="needs TensorRT and a CUDA GPU: pip install tensorrt-cu12"):
        Sampler(str(bundles["ddpm"]), backend="trt", device="cuda")
    with pytest.raises(GenError, match="backend 'trt' does not run on device 'cpu'; it runs on cuda"):
        Sampler(str(bundles["ddpm"]), backend="trt")
    from tests.cli.test_cli import gen

    r = gen("export", bundles["ddpm"], "--trt", check=False)
    assert r.returncode != 0 and "gen export --trt needs TensorRT and a CUDA GPU: pip install tensorrt-cu12" in r.stderr
    assert "gen generate BUNDLE --backend ort" in r.stderr  # export itself has no --backend


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA GPU is present")
def test_cuda_without_a_gpu_is_refused_on_each_backend(bundles):
    with pytest.raises(GenError, match="torch sees no CUDA GPU"):
        Sampler(str(bundles["gan"]), backend="eager", device="cuda")
    with pytest.raises(GenError, match="torch sees no CUDA GPU"):
        Sampler(str(bundles["gan"]), backend="compile", device="cuda", precision="fp16")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        fix = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
        with pytest.raises(GenError, match="device 'cuda' needs onnxruntime-gpu") as refused:
            Sampler(str(bundles["gan"]), backend="ort", device="cuda")
        assert fix in str(refused.value) and "never be installed together" in str(refused.value)


def test_both_onnxruntime_builds_installed_is_named_with_the_fix():
    from gen.runtime.backends.ort import cuda_provider_fix

    both = cuda_provider_fix({"onnxruntime": "1.22.0", "onnxruntime-gpu": "1.22.0"})
    assert "onnxruntime 1.22.0 and onnxruntime-gpu 1.22.0 are both installed" in both
    assert both.endswith("pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu")
    assert "both installed" not in cuda_provider_fix({"onnxruntime": "1.22.0", "onnxruntime-gpu": None})


def test_compile_backend_matches_eager(bundles, capfd, monkeypatch):
    # dynamo's graph capture with the aot_eager backend: gen's plumbing in 2 s, where inductor's C++
    # build takes 20 s on these cores (inductor on CPU: 1.44x eager, docs/RESULTS.md)
    monkeypatch.setenv("GEN_COMPILE_BACKEND", "aot_eager")
    eager = Sampler(str(bundles["gan"]), backend="eager", threads=2).generate(n=3, seed=5)
    with Sampler(str(bundles["gan"]), backend="compile", threads=2) as s:
        compiled = s.generate(n=3, seed=5)
        assert "compiling generator" in capfd.readouterr().err  # the slow first call says why
        assert np.array_equal(s.generate(n=3, seed=5), compiled)
        assert "compiling" not in capfd.readouterr().err  # and only the first
        assert s.backend.describe()["torch_compile_mode"] == "default"
        assert s.backend.describe()["torch_compile_backend"] == "aot_eager"
    assert np.abs(compiled - eager).max() <= 1e-5


def test_ort_tensorrt_provider_caches_under_the_bundles_cache_directory(bundles, tmp_path, monkeypatch):
    from gen.runtime.backends.ort import trt_provider_options
    from gen.runtime.engines import cache_dir_for

    monkeypatch.setenv("GEN_CACHE_DIR", str(tmp_path))
    bundle = load_bundle(bundles["ddpm"])
    options = trt_provider_options(bundle, "fp16")
    where = cache_dir_for(bundle) / "ort-trt"
    assert str(where).startswith(str(tmp_path)) and options["trt_engine_cache_path"] == str(where)
    assert options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"] and options["trt_fp16_enable"]
    assert not trt_provider_options(bundle, "fp32")["trt_fp16_enable"]
    other = load_bundle(bundles["gan"])
    assert cache_dir_for(other) != cache_dir_for(bundle)  # one directory per bundle
