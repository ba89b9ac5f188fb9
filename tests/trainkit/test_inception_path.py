"""The --inception path with a stand-in feature network of the same I/O contract.

Real Inception-v3 weights are not obtainable offline; this checks gen's side of the contract (resize
to 299, grey -> RGB, (N, 2048, 1, 1) outputs flattened, FD on the result, clear errors)."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from gen.errors import GenError
from gen.trainkit.eval.evaluate import evaluate_run
from gen.trainkit.eval.inception import inception_features
from gen.trainkit.train import train


class PoolFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2048, 1)

    def forward(self, x):  # pool first so the stand-in stays cheap; output (N, 2048, 1, 1) like pool3
        h = torch.relu(self.conv(nn.functional.avg_pool2d(x, 23)))  # 299 = 13 x 23
        return nn.functional.adaptive_avg_pool2d(h, 1)


@pytest.fixture(scope="module")
def feature_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("inc") / "features.onnx"
    torch.manual_seed(0)
    torch.onnx.export(PoolFeatures().eval(), (torch.zeros(1, 3, 299, 299),), str(path), input_names=["x"],
                      output_names=["f"], dynamic_axes={"x": {0: "n"}, "f": {0: "n"}}, dynamo=False)
    return path


def test_features_from_grey_8x8_images(feature_onnx):
    f = inception_features(str(feature_onnx), np.zeros((3, 1, 8, 8), np.float32), batch=2)
    assert f.shape == (3, 2048) and f.dtype == np.float64


def test_eval_reports_fid_inception(feature_onnx, tmp_path):
    run = train("vae", "digits", str(tmp_path / "run"), {"steps": 3, "width": 8, "batch_size": 16}, progress=False)
    result = evaluate_run(str(run.path), n=20, inception=str(feature_onnx))
    assert result["metrics"]["fid_inception"] > 0
    assert json.loads(run.eval_path.read_text())["metrics"]["fid_inception"] == result["metrics"]["fid_inception"]


def test_bad_inception_files_are_named(tmp_path):
    with pytest.raises(GenError, match=r"--inception .*none.onnx: file not found"):
        inception_features(str(tmp_path / "none.onnx"), np.zeros((1, 1, 8, 8), np.float32))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(GenError, match="is not a loadable ONNX model"):
        inception_features(str(bad), np.zeros((1, 1, 8, 8), np.float32))


@pytest.mark.parametrize("options, message", [
    ({"steps": 0}, "steps must be at least 1, got 0"),
    ({"scheduler": "foo"}, "unknown scheduler 'foo'"),
    ({"inception": "BAD"}, "is not a loadable ONNX model"),
])
def test_eval_refuses_bad_arguments_before_any_data_or_sampling(tmp_path, monkeypatch, options, message):
    import gen.trainkit.eval.evaluate as evaluate

    run = train("ddpm", "digits", str(tmp_path / "run"), {"widths": [8, 16], "batch_size": 8, "steps": 2,
                                                           "sample_every": 1000, "checkpoint_every": 1000}, progress=False)
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    options = {k: str(tmp_path / "bad.onnx") if v == "BAD" else v for k, v in options.items()}
    monkeypatch.setattr(evaluate, "load_dataset", lambda *a, **k: pytest.fail("the data was loaded before the check"))
    with pytest.raises(GenError, match=message):
        evaluate.evaluate_run(str(run.path), n=20, **options)
    assert not run.eval_path.exists()


def test_eval_reports_the_steps_and_scheduler_it_sampled_with(tmp_path):
    run = train("ddpm", "digits", str(tmp_path / "run"), {"widths": [8, 16], "batch_size": 8, "steps": 2,
                                                           "sample_every": 1000, "checkpoint_every": 1000}, progress=False)
    lines = []
    result = evaluate_run(str(run.path), n=10, progress=lines.append)  # the run's defaults: said, not implied
    assert result["sampling"] == {"scheduler": "ddim", "steps": 50}
    assert f"sampling 10 images from {run.path} (scheduler ddim, steps 50) ..." in lines
    assert json.loads(run.eval_path.read_text())["sampling"] == {"scheduler": "ddim", "steps": 50}
