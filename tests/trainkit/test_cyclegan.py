"""CycleGAN: unpaired domains, training that resumes bit-identically (image pools included), evaluation
both ways, and the two-direction bundle through every backend and the CLI."""

import numpy as np
import pytest
import torch
from PIL import Image

from gen.errors import GenError
from gen.export.onnx_io import psnr
from gen.fileio import load_safetensors
from gen.runtime.sampler import Sampler
from gen.trainkit.data import load_dataset
from gen.trainkit.train import train
from tests.cli.test_cli import gen_here as gen  # in process: the CLI path without a new interpreter

TINY = {"width": 4, "blocks": 1, "batch_size": 4, "pool_size": 3, "log_every": 5, "sample_every": 100, "checkpoint_every": 4}


def test_embedded_domains_are_unpaired_and_labelled():
    a = load_dataset("digits-thin", data_b="digits-thick")
    b = a.domain_b
    assert a.train_x.shape[1:] == b.train_x.shape[1:] == (1, 16, 16)
    assert len(a.train_x) + len(a.test_x) + len(b.train_x) + len(b.test_x) == 1797  # every digit once
    assert a.class_names == b.class_names and set(a.train_y) == set(range(10))
    ink = lambda d: (d.train_x > 0).mean()  # noqa: E731
    assert ink(b) > 2 * ink(a)  # thick strokes cover far more of the image than thin ones
    plain = load_dataset("digits", data_b="digits-thin")  # plain digits take the half thin leaves
    assert len(plain.train_x) + len(plain.test_x) == 898


def test_unpaired_folders_share_size_and_channels_and_bad_specs_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    for name, shape in (("gray", (20, 20)), ("colour", (24, 24, 3))):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    a = load_dataset(str(tmp_path / "gray"), data_b=str(tmp_path / "colour"))
    assert a.train_x.shape[1:] == a.domain_b.train_x.shape[1:] == (3, 16, 16)  # colour for both, largest power of 2
    (tmp_path / "paired" / "A").mkdir(parents=True)
    (tmp_path / "paired" / "B").mkdir()
    for spec_a, spec_b, message in [
        ("digits-thin", "digits-thin", "both 'digits-thin': CycleGAN translates between two different domains"),
        (str(tmp_path / "paired"), "digits-thick", "holds A/ and B/ sub-folders: that is paired data for gen train pix2pix"),
        ("digits-thin", str(tmp_path / "nope"), "--data-b must be digits-thin, digits-thick, digits or a folder"),
    ]:
        with pytest.raises(GenError, match=message):
            load_dataset(spec_a, data_b=spec_b)
    with pytest.raises(GenError, match="holds A/ and B/"):
        train("cyclegan", str(tmp_path / "paired"), str(tmp_path / "run"), {"steps": 1}, progress=False)
    assert not (tmp_path / "run").exists()


def test_training_resumes_bit_identically_and_eval_scores_both_directions(tmp_path, quick_metric_classifier, monkeypatch):
    from gen.trainkit.families.cyclegan.trainer import CycleGANTrainer

    whole = train("cyclegan", "digits-thin", str(tmp_path / "whole"), {**TINY, "steps": 8}, progress=False)
    step = CycleGANTrainer.train_step

    def interrupted(self, batch, g, i):  # the learning rate decays over the whole run: stop one mid-way
        if i == 5:
            raise KeyboardInterrupt
        return step(self, batch, g, i)

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(CycleGANTrainer, "train_step", interrupted)
        train("cyclegan", "digits-thin", str(tmp_path / "half"), {**TINY, "steps": 8}, progress=False)
    resumed = train("cyclegan", "digits-thin", str(tmp_path / "half"), {}, resume=True, progress=False)
    a, _ = load_safetensors(whole.state_path)  # generators, discriminators, optimizers and both image pools
    b, _ = load_safetensors(resumed.state_path)
    assert any(k.startswith("module.pool_a.") for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert Image.open(whole.path / "samples.png").size[0] > 0  # rows of input | translated | cycled back
    from gen.trainkit.eval.evaluate import evaluate_run

    result = evaluate_run(str(whole.path))
    assert set(result["metrics"]) == {"AtoB", "BtoA"} and result["data_b"] == "digits-thick"
    for m in result["metrics"].values():
        assert set(m) == {"fd_translated_vs_target", "fd_input_vs_target", "cycle_l1"} and m["fd_input_vs_target"] > 50
    assert result["classifier"]["classes"] == 20 and result["classifier"]["held_out_accuracy"] > 0.8
    from gen.export.onnx_export import export_run

    with pytest.raises(GenError, match="no representative inputs to calibrate it on; export it without --int8"):
        export_run(str(whole.path), str(tmp_path / "q"), precisions=("fp32", "int8"), progress=lambda *_: None)
    assert not (tmp_path / "q").exists()


def test_bundle_both_directions_ort_eager_fp16_and_errors(bundles):
    thin = load_dataset("digits-thin", data_b="digits-thick").test_x[:3]
    path = str(bundles["cyclegan"])
    for direction in ("AtoB", "BtoA"):
        ort = Sampler(path).generate(image=thin, direction=direction)
        eager = Sampler(path, backend="eager").generate(image=thin, direction=direction)
        assert ort.shape == (3, 1, 16, 16) and np.abs(ort - eager).max() <= 1e-3
        assert psnr(ort, Sampler(path, precision="fp16").generate(image=thin, direction=direction)) >= 35
    assert np.abs(Sampler(path).generate(image=thin) - Sampler(path).generate(image=thin, direction="BtoA")).max() > 1e-3
    assert np.array_equal(Sampler(path).generate(image=thin), Sampler(path).generate(image=thin, direction="AtoB"))
    for kwargs, message in [({"image": thin, "direction": "up"}, "direction must be AtoB .*'digits-thin'.*'digits-thick'.* or BtoA, got 'up'"),
                            ({"direction": "AtoB"}, "pass image="),
                            ({"image": np.zeros((2, 16, 16, 3), np.float32) + 9}, "image")]:
        with pytest.raises(GenError, match=message):
            Sampler(path).generate(**kwargs)
    with pytest.raises(GenError, match="direction applies to CycleGAN bundles; this is a pix2pix bundle"):
        Sampler(str(bundles["pix2pix"])).generate(image=np.zeros((32, 32), np.uint8), direction="AtoB")


def test_cli_translates_both_ways(bundles, tmp_path):
    thin = load_dataset("digits-thin", data_b="digits-thick").test_x[0, 0]
    Image.fromarray(np.round((thin + 1) * 127.5).astype(np.uint8)).save(tmp_path / "in.png")
    gen("generate", bundles["cyclegan"], "--image", tmp_path / "in.png", "--out", tmp_path / "ab.png")
    gen("generate", bundles["cyclegan"], "--image", tmp_path / "in.png", "--direction", "BtoA", "--out", tmp_path / "ba.png")
    ab, ba = (np.asarray(Image.open(tmp_path / f)) for f in ("ab.png", "ba.png"))
    assert ab.shape == ba.shape == (16, 16) and not np.array_equal(ab, ba)
    expected = Sampler(str(bundles["cyclegan"])).generate(image=str(tmp_path / "in.png"), direction="BtoA", output="uint8")
    assert np.array_equal(ba, expected[0, ..., 0])
    p = gen("generate", bundles["cyclegan"], "--image", tmp_path / "in.png", "--direction", "sideways", "--out",
            tmp_path / "x.png", check=False)
    assert p.returncode == 2 and "direction must be AtoB" in p.stderr and not (tmp_path / "x.png").exists()
