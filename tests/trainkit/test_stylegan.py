"""StyleGAN: training (plain and progressive) that resumes bit-identically, and the bundle's truncation,
style mixing and latent walk on every backend, in the CLI and served; bad arguments refused by name."""

import numpy as np
import pytest
import torch
from PIL import Image

from gen.errors import GenError
from gen.export.onnx_io import psnr
from gen.fileio import load_safetensors
from gen.runtime.sampler import Sampler
from gen.trainkit.families.stylegan.trainer import fade_schedule
from gen.trainkit.train import train
from tests.cli.test_cli import gen_here as gen  # in process: the CLI path without a new interpreter

TINY = {"width": 8, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "batch_size": 4, "r1_every": 2,
        "log_every": 2, "sample_every": 100, "checkpoint_every": 3}


def test_progressive_schedule_grows_from_4x4_and_fades_each_resolution_in():
    sizes = [4, 8, 16]  # a 16 px model: 8 fades in over [500, 1000), 16 over [1500, 2000) of 4000 steps
    assert fade_schedule(0, 4000, sizes, True) == [1.0, 0.0, 0.0]
    assert fade_schedule(750, 4000, sizes, True) == [1.0, 0.5, 0.0]
    assert fade_schedule(1750, 4000, sizes, True) == [1.0, 1.0, 0.5]
    assert fade_schedule(2000, 4000, sizes, True) == fade_schedule(3999, 4000, sizes, True) == [1.0, 1.0, 1.0]
    assert fade_schedule(0, 4000, sizes, False) == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("progressive", [False, True])
def test_training_resumes_bit_identically(tmp_path, monkeypatch, progressive):
    from gen.trainkit.families.stylegan.trainer import StyleGanTrainer

    opts = {**TINY, "progressive": progressive, "steps": 6}
    whole = train("stylegan", "digits", str(tmp_path / "whole"), opts, progress=False)
    step = StyleGanTrainer.train_step

    def interrupted(self, batch, g, i):  # the growth schedule spans the whole run: stop one mid-way
        if i == 4:
            raise KeyboardInterrupt
        return step(self, batch, g, i)

    monkeypatch.setattr(StyleGanTrainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train("stylegan", "digits", str(tmp_path / "cut"), opts, progress=False)
    monkeypatch.undo()
    resumed = train("stylegan", "digits", str(tmp_path / "cut"), {}, resume=True, progress=False)
    a, _ = load_safetensors(whole.state_path)
    b, _ = load_safetensors(resumed.state_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # G, EMA G, D, w_avg, Adam
    if progressive:
        logged = (tmp_path / "whole" / "metrics.jsonl").read_text()
        assert '"resolution": 4.0' in logged and '"resolution": 8.0' in logged


def test_truncation_mixing_and_walk(bundles):
    path = str(bundles["stylegan"])
    ort, eager, half = Sampler(path), Sampler(path, backend="eager"), Sampler(path, precision="fp16")
    for kwargs in ({"n": 4, "seed": 1}, {"n": 4, "seed": 1, "psi": 0.5, "mix_seed": 9, "mix_layer": 2}):
        a = ort.generate(**kwargs)
        assert a.shape == (4, 1, 8, 8) and np.array_equal(a, ort.generate(**kwargs))  # determinism by seed
        assert np.abs(eager.generate(**kwargs) - a).max() <= 1e-3
        assert psnr(a, half.generate(**kwargs)) >= 35
    own = ort.generate(n=3, seed=5)
    assert np.array_equal(ort.generate(n=3, seed=1, mix_seed=5, mix_layer=0), own)  # layer 0: the mix seed's image
    assert not np.array_equal(ort.generate(n=3, seed=1, mix_seed=5, mix_layer=3), own)
    mean = ort.generate(n=3, seed=1, psi=0.0)
    assert np.abs(mean - mean[:1]).max() <= 1e-5  # psi 0: every z gives the average image
    assert ort.generate(seed=1, interpolate=2).shape == (1, 1, 8, 8)  # a one-frame walk: seed's own image
    walk = ort.generate(n=5, seed=1, interpolate=2)
    assert np.array_equal(walk[0], ort.generate(n=1, seed=1)[0]) and np.abs(walk[-1] - ort.generate(n=1, seed=2)[0]).max() <= 1e-5


@pytest.mark.parametrize("kwargs,message", [
    ({"psi": 1.5}, r"psi must be in \[0, 1\], got 1.5"),
    ({"psi": -0.1}, r"psi must be in \[0, 1\], got -0.1"),
    ({"mix_seed": 3, "mix_layer": 4}, "mix_layer must be between 0 and 3 .*got 4"),
    ({"mix_layer": 1}, r"mix_layer \(--mix-layer\) applies with mix_seed"),
    ({"mix_seed": 3, "interpolate": 4}, "interpolate and mix_seed do not combine"),
    ({"steps": 4}, "steps applies to diffusion bundles; this is a stylegan bundle"),
])
def test_bad_arguments_are_named(bundles, kwargs, message):
    with pytest.raises(GenError, match=message):
        Sampler(str(bundles["stylegan"])).generate(n=2, **kwargs)


def test_psi_on_another_family_is_refused(bundles):
    with pytest.raises(GenError, match="psi applies to StyleGAN bundles; this is a gan bundle"):
        Sampler(str(bundles["gan"])).generate(n=2, psi=0.5)


def test_cli_walk_strip_and_gif(bundles, tmp_path):
    gen("generate", bundles["stylegan"], "--interpolate", "1", "2", "--frames", "6", "--out", tmp_path / "walk.png")
    strip = Image.open(tmp_path / "walk.png")
    assert strip.width > 4 * strip.height  # one row of 6 frames
    gen("generate", bundles["stylegan"], "--interpolate", "1", "2", "--frames", "6", "--out", tmp_path / "walk.gif")
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 6
    p = gen("generate", bundles["stylegan"], "--psi", "2", "--out", tmp_path / "x.png", check=False)
    assert p.returncode == 2 and "--psi must be from 0 to 1, got 2.0" in p.stderr and not (tmp_path / "x.png").exists()
