"""Export writes a complete, checked bundle or nothing at all."""

import json

import onnx
import pytest

from gen.errors import GenError
from gen.export.onnx_export import export_run
from gen.trainkit.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    opts = {"widths": [16, 32], "batch_size": 16, "steps": 5, "conditional": True, "log_every": 5, "sample_every": 100, "checkpoint_every": 100}
    return train("ddpm", "digits", str(tmp_path_factory.mktemp("r") / "run"), opts, progress=False).path


def test_manifest_describes_the_bundle(run, tmp_path):
    out = export_run(str(run), str(tmp_path / "b"), progress=lambda *_: None)
    m = json.loads((out / "gen.json").read_text())
    assert m["schema_version"] == 1 and m["family"] == "ddpm" and m["precision"] == "fp32"
    den = m["components"]["denoiser"]
    assert [i["name"] for i in den["inputs"]] == ["sample", "timestep", "class_labels"]
    assert den["inputs"][0] == {"name": "sample", "dtype": "float32", "shape": ["batch", 1, 8, 8]}
    assert m["parity"]["denoiser"]["ort_fp32_vs_eager_max_abs"] < 1e-4
    assert m["sampling"]["scheduler_config"]["num_train_timesteps"] == 1000 and m["sampling"]["null_label"] == 10
    assert m["conditioning"]["num_classes"] == 10 and len(m["source"]["weights_sha256"]) == 64
    assert (out / "weights" / "weights.safetensors").is_file()
    model = onnx.load(str(out / "denoiser.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_existing_bundle_is_kept_unless_forced(run, tmp_path):
    out = export_run(str(run), str(tmp_path / "b"), progress=lambda *_: None)
    before = (out / "gen.json").read_text()
    with pytest.raises(GenError, match="already exists; pass --force"):
        export_run(str(run), str(out), progress=lambda *_: None)
    assert (out / "gen.json").read_text() == before
    export_run(str(run), str(out), force=True, precisions=("fp32", "fp16"), progress=lambda *_: None)
    assert json.loads((out / "gen.json").read_text())["precision"] == "fp16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temp or old directories left


def test_parity_failure_writes_nothing(run, tmp_path):
    with pytest.raises(GenError, match=r"differs from eager by .* \(> tolerance 0.0\); nothing was written"):
        export_run(str(run), str(tmp_path / "b"), tolerance=0.0, progress=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def test_bad_export_arguments(run, tmp_path):
    with pytest.raises(GenError, match="--opset must be between 13 and 21"):
        export_run(str(run), str(tmp_path / "b"), opset=7)
    with pytest.raises(GenError, match="run directory not found"):
        export_run(str(tmp_path / "none"), str(tmp_path / "b"))


def test_weights_past_the_protobuf_limit_go_to_external_data(bundles, tmp_path, monkeypatch):
    """The >2 GB path, exercised on a small model by lowering the threshold: one .data file beside the
    .onnx, recorded in the manifest, checked on load, readable like the .onnx, and linked when served."""
    import json
    import os

    import numpy as np

    import gen.export.onnx_io as onnx_io
    from gen.errors import GenError
    from gen.runtime.sampler import Sampler
    from gen.serving.repository import build_repository

    monkeypatch.setattr(onnx_io, "EXTERNAL_DATA_ABOVE", 10_000)
    run = json.loads((bundles["gan"] / "gen.json").read_text())["source"]["run"]
    out = export_run(run, str(tmp_path / "big"), progress=lambda *_: None)
    entry = json.loads((out / "gen.json").read_text())["components"]["generator"]["files"]["fp32"]
    data = out / entry["external_data"]["path"]
    assert data.name == "generator.onnx.data" and data.stat().st_size == entry["external_data"]["bytes"] > 10_000
    assert (data.stat().st_mode & 0o777) == ((out / "generator.onnx").stat().st_mode & 0o777)
    a = Sampler(str(out)).generate(n=3, seed=1)
    assert np.abs(a - Sampler(str(bundles["gan"])).generate(n=3, seed=1)).max() <= 1e-5
    repo = build_repository([str(out)], str(tmp_path / "repo"), names=["big"])
    assert (repo / "big_generator" / "1" / "generator.onnx.data").is_file()
    assert (repo / "big" / "1" / "generator.onnx.data").is_file()
    with open(data, "r+b") as f:
        f.truncate(entry["external_data"]["bytes"] - 4)
    with pytest.raises(GenError, match="truncated or modified"):
        Sampler(str(out))
    os.unlink(data)
    with pytest.raises(GenError, match="weights file is missing"):
        Sampler(str(out))
