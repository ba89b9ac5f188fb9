"""`gen distill decoder` and the tiny decoder in a bundle (tiny-sd): distilled from the bundle's own VAE
decoder, added onto it hash-checked with its figures in gen.json, run by ORT as by eager, chosen per
call with generate(decoder=...), and refused clearly where it cannot apply."""

import json
import shutil

import numpy as np
import pytest

from gen.errors import GenError
from gen.export.tiny_decoder import add_tiny_decoder
from gen.runtime.bundle import load_bundle
from gen.runtime.sampler import Sampler
from gen.trainkit.sd.tiny_decoder import distill_decoder

OPTIONS = {"steps": 60, "images": 12, "prompts": 2, "sample_steps": 2, "crop": 4, "batch_size": 4, "widths": [16, 16, 8, 8],
           "blocks": [1, 1, 1, 1], "threads": 1, "held_out": 0.25, "log_every": 10}
PROMPT = "a red house"


@pytest.fixture(scope="module")
def tiny(sd_bundle, tmp_path_factory):
    """(the bundle with a tiny decoder added, the distillation run, its config)."""
    root = tmp_path_factory.mktemp("tiny-decoder")
    bundle = shutil.copytree(sd_bundle, root / "bundle")  # the session's bundle stays as other tests expect it
    run, config = distill_decoder(str(bundle), str(root / "run"), OPTIONS, progress=False)
    add_tiny_decoder(str(bundle), str(run.path), progress=lambda *_: None)
    return bundle, run, config


def test_the_run_learns_and_records_its_teacher(tiny, sd_bundle):
    _, run, config = tiny
    for name in ("config.json", "weights.safetensors", "metrics.jsonl", "samples.png"):
        assert (run.path / name).is_file(), name
    assert config["family"] == "tiny-decoder" and config["teacher_sha256"] == \
        load_bundle(sd_bundle).components["vae_decoder"].files["fp32"].sha256
    assert config["sampled_latents"] == 2 and config["encoded_latents"] == 12 and config["held_out_latents"] == 4
    losses = [m["loss"] for m in run.metrics() if "loss" in m]
    assert np.mean(losses[-3:]) < 0.9 * losses[0]  # it trains; the quality bar is the sd_peers figure (docs/RESULTS.md)


def test_gen_json_records_the_component_and_its_figures(tiny):
    bundle, _, config = tiny
    b = load_bundle(bundle)  # every file, the new ones too, hash-checked
    comp = b.components["tiny_decoder"]
    assert comp.signature() == b.signature("vae_decoder")
    assert set(comp.files) == {"fp32", "fp16"} and comp.files["fp16"].path == "tiny_decoder.fp16.onnx"
    parity = b.manifest.parity["tiny_decoder"]
    assert parity["psnr_db_vs_vae_decoder"] == config["psnr_db"] and parity["held_out_latents"] == 4
    assert parity["params"] == config["params"] < parity["vae_decoder_params"]
    assert parity["ort_fp32_vs_eager_max_abs"] < 1e-4 and parity["images_tiny_vs_full"]["steps"] == 4
    assert any(f.path == "tiny_decoder/weights.safetensors" for f in b.manifest.weights_files)
    with open(bundle / "tiny_decoder.onnx", "ab") as f:  # a modified file is refused like any component's
        f.write(b"x")
    try:
        with pytest.raises(GenError, match="tiny_decoder.onnx is truncated or modified"):
            load_bundle(bundle)
    finally:
        with open(bundle / "tiny_decoder.onnx", "r+b") as f:
            f.truncate(comp.files["fp32"].bytes)


def test_tiny_runs_the_same_on_ort_eager_and_openvino_and_differs_from_full(tiny):
    bundle, _, _ = tiny
    with Sampler(str(bundle), backend="ort") as ort, Sampler(str(bundle), backend="eager") as eager, \
            Sampler(str(bundle), backend="openvino", precision="fp32") as ov:
        a = ort.generate(PROMPT, seed=3, steps=2, decoder="tiny")
        b = eager.generate(PROMPT, seed=3, steps=2, decoder="tiny")
        c = ov.generate(PROMPT, seed=3, steps=2, decoder="tiny")
        full = ort.generate(PROMPT, seed=3, steps=2)
        assert ort.backend.component_calls["tiny_decoder"] == 1 and ort.backend.component_calls["vae_decoder"] == 1
        assert ov.backend.component_calls["tiny_decoder"] == 1 and "vae_decoder" not in ov.backend.component_calls
    assert a.shape == full.shape == (1, 3, 64, 64)
    assert np.abs(a - b).max() < 1e-4 and np.abs(a - c).max() < 1e-3
    assert np.abs(a - full).max() > 1e-3  # a different network decoded it


def test_refusals(tiny, sd_bundle, tmp_path):
    bundle, run, _ = tiny
    with Sampler(str(sd_bundle), backend="ort") as plain:
        with pytest.raises(GenError, match="needs a bundle with a tiny decoder") as e:
            plain.generate(PROMPT, steps=2, decoder="tiny")
        assert e.value.argument == "decoder"
        assert plain.generate(PROMPT, steps=1, decoder="full").shape == (1, 3, 64, 64)
        with pytest.raises(GenError, match="unknown decoder 'small'; choose one of full, tiny"):
            plain.generate(PROMPT, steps=2, decoder="small")
    with pytest.raises(GenError, match="already has a tiny decoder; pass --force"):
        add_tiny_decoder(str(bundle), str(run.path))
    other = shutil.copytree(run.path, tmp_path / "other")  # a run distilled from another decoder
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "teacher_sha256": "0" * 64}))
    with pytest.raises(GenError, match="distilled from another decoder"):
        add_tiny_decoder(str(sd_bundle), str(other))
    assert "tiny_decoder" not in load_bundle(sd_bundle).components


def test_served_input(tiny):
    bundle, _, _ = tiny
    b = load_bundle(bundle)
    served = {s["name"]: s for s in b.spec.served_inputs(b)}
    assert served["decoder"] == {"name": "decoder", "dtype": "bytes", "shape": [1], "optional": True}


def test_previews_through_the_tiny_decoder(tiny, sd_bundle):
    """A latent model shows its steps only where a tiny decoder makes x0 a picture cheaply (the demo's
    previews), whichever decoder makes the final images."""
    from gen.demo.models import DemoModel

    bundle, _, _ = tiny
    with Sampler(str(bundle), backend="ort") as s:
        shown = []
        s.generate(PROMPT, steps=2, on_step=lambda i, steps, x0: shown.append(s.source.preview(x0)))
        assert s.source.previews and len(shown) == 2 and shown[-1].shape == (1, 3, 64, 64)
        assert np.abs(shown[-1]).max() <= 1.0 and s.backend.component_calls["tiny_decoder"] == 2
    with Sampler(str(sd_bundle), backend="ort") as plain:
        assert not plain.source.previews
    model = DemoModel("m", str(bundle), {"backend": "ort"})
    try:
        info = model.describe()
        assert info["previews"] and model.preview(np.zeros((1, 4, 8, 8), np.float32)).shape == (64, 64, 3)
        assert next(a for a in info["arguments"] if a["name"] == "decoder")["choices"] == ["full", "tiny"]
    finally:
        model.close()


def test_served_repository_carries_it(tiny, tmp_path):
    """gen serve build: the tiny decoder is a component model and a file of the inline pipeline, and
    `decoder` an optional request input of the pipeline."""
    from gen.serving.repository import build_repository

    bundle, _, _ = tiny
    repo = build_repository([str(bundle)], str(tmp_path / "repo"), names=["sd"])
    assert (repo / "sd_tiny_decoder" / "1" / "model.onnx").is_file() and (repo / "sd" / "1" / "tiny_decoder.onnx").is_file()
    assert 'name: "decoder" data_type: TYPE_STRING dims: [1] optional: true' in (repo / "sd" / "config.pbtxt").read_text()
