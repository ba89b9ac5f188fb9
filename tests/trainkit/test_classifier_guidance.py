"""Classifier guidance: the noisy classifier's hand-written input gradient, the guided sampler on
every backend against the torch-side reference, and refusals."""

import json

import numpy as np
import pytest
import torch

from gen.errors import GenError
from gen.export.onnx_export import export_run
from gen.nets.noisy_classifier import InputGradient, NoisyClassifier
from gen.runtime.sampler import Sampler
from gen.trainkit.families.ddpm.classifier import log_prob_gradient, train_noisy_classifier, with_classifier
from gen.trainkit.train import load_run, train
from tests.cli.test_cli import gen_here as gen  # in process: the CLI path without a new interpreter

FAST = {"log_every": 50, "sample_every": 1000, "checkpoint_every": 1000}
TINY = {"steps": 20, "batch_size": 16, "classifier_width": 8, **FAST}


@pytest.mark.parametrize("size", [8, 16, 32])
def test_the_written_out_gradient_is_autograds(size):
    torch.manual_seed(size)
    classifier = NoisyClassifier(3, 7, size, width=8).eval()
    x, t, y = torch.randn(6, 3, size, size), torch.randint(0, 1000, (6,)), torch.randint(0, 7, (6,))
    reference = log_prob_gradient(classifier, x, t, y)
    ours = InputGradient(classifier)(x, t, y)
    assert reference.abs().max() > 1e-6  # not a vacuous comparison
    assert (ours - reference).abs().max() <= 1e-5 * reference.abs().max()


@pytest.fixture(scope="module")
def guided(bundles, tmp_path_factory):
    """The session's tiny DDPM run and its classifier run (tests/bundles_fixture.py)."""
    root = bundles["ddpm-guided"].parent
    return root / "run-ddpm", root / "run-ddpm-guided", bundles["ddpm-guided"]


def test_guided_sampling_is_the_same_on_every_backend_and_in_torch(guided):
    _, clf_run, bundle = guided
    args = {"n": 6, "seed": 3, "steps": 8, "labels": [0, 1, 2, 3, 4, 5], "classifier_scale": 5.0}
    eager = Sampler(str(bundle), backend="eager").generate(**args)
    ort = Sampler(str(bundle), backend="ort", threads=1).generate(**args)
    unguided = Sampler(str(bundle), backend="ort", threads=1).generate(**{**args, "classifier_scale": 0.0})
    plain = Sampler(str(bundle), backend="ort", threads=1).generate(n=6, seed=3, steps=8)
    assert np.abs(eager - ort).max() <= 1e-4
    assert np.abs(ort - unguided).mean() > 1e-2  # the classifier steers
    assert np.array_equal(unguided, plain)  # scale 0 is no guidance at all
    fp16 = Sampler(str(bundle), backend="ort", precision="fp16").generate(**args)
    assert np.abs(fp16 - ort).mean() <= 2e-2
    # the torch-side reference: diffusers' DDIM (deterministic, so comparable step by step), the
    # gradient from torch.autograd
    _, _, trainer = load_run(str(clf_run))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 8, 8, generator=g)
    torch_side = _torch_ddim(trainer, x, torch.tensor(args["labels"]), 8, 5.0)
    ours = Sampler(str(bundle), backend="eager")
    from gen.runtime.families.ddpm import FAMILY

    bound = FAMILY.bind(ours.bundle, {**{k: v for k, v in args.items() if k != "seed"}, "scheduler": "ddim"})
    shipped = FAMILY.sample(ours.backend, 6, _Start(x.numpy()), bound)
    assert np.abs(np.clip(shipped, -1, 1) - torch_side.numpy()).max() <= 1e-3


class _Start:
    """An rng whose only draw is the given start noise (DDIM at eta 0 draws nothing else)."""

    def __init__(self, x):
        self.x = x

    def standard_normal(self, shape, dtype=None):
        assert tuple(shape) == self.x.shape
        return self.x


def _torch_ddim(trainer, x, labels, steps, scale):
    from diffusers import DDIMScheduler

    from gen.runtime.schedulers import classifier_guided

    sched = DDIMScheduler.from_config(trainer.scheduler.config, timestep_spacing="trailing")
    sched.set_timesteps(steps)
    with torch.no_grad():
        for t in sched.timesteps:
            tt = torch.full((len(x),), int(t))
            out = trainer.unet(x, tt).sample
            grad = log_prob_gradient(trainer.classifier, x, tt, labels)
            out = classifier_guided(out, grad, scale, float(sched.alphas_cumprod[int(t)]), sched.config.prediction_type)
            x = sched.step(out, t, x).prev_sample
    return x.clamp(-1, 1)


def test_labels_alone_guide_at_the_bundles_scale_and_sampler_and_bad_values_are_refused(guided):
    _, _, bundle = guided
    s = Sampler(str(bundle), backend="ort", threads=1)
    default = s.bundle.sampling.classifier["scale"]
    guided_default = s.generate(n=2, seed=1, steps=4, labels=7)
    assert np.array_equal(guided_default, s.generate(n=2, seed=1, steps=4, labels=7, classifier_scale=default,
                                                     scheduler="ddpm"))  # ancestral sampling when guided
    assert not np.array_equal(guided_default, s.generate(n=2, seed=1, steps=4, labels=7, scheduler="ddim"))
    with pytest.raises(GenError, match="classifier_scale must be >= 0"):
        s.generate(n=2, steps=4, labels=1, classifier_scale=-1.0)
    with pytest.raises(GenError, match="label 10 is out of range"):
        s.generate(n=2, steps=4, labels=10)
    with pytest.raises(GenError, match="guidance needs a class-conditional model"):
        s.generate(n=2, steps=4, labels=1, guidance=2.0)
    with pytest.raises(GenError, match="eta = 0.5 applies to the ddim scheduler only"):  # guided: ancestral by default
        s.generate(n=2, steps=4, labels=1, eta=0.5)


def test_classifier_scale_on_a_bundle_without_a_classifier_names_the_fix(bundles):
    with pytest.raises(GenError, match="gen train noisy-classifier"):
        Sampler(str(bundles["ddpm"]), backend="ort").generate(n=1, steps=2, classifier_scale=2.0)


def test_bad_classifier_runs_are_refused_and_nothing_is_written(guided, bundles, tmp_path):
    ddpm_run, clf_run, _ = guided
    gan_run = bundles["gan"].parent / "run-gan"
    with pytest.raises(GenError, match="is a gan run"):
        train_noisy_classifier(str(gan_run), str(tmp_path / "a"), TINY, progress=False)
    with pytest.raises(GenError, match="is a classifier run"):
        train_noisy_classifier(str(clf_run), str(tmp_path / "b"), TINY, progress=False)
    with pytest.raises(GenError, match="--classifier-width must be a positive integer"):
        train_noisy_classifier(str(ddpm_run), str(tmp_path / "c"), {**TINY, "classifier_width": 0}, progress=False)
    assert not any(tmp_path.iterdir())
    # a DDPM on unlabelled data: nothing to classify
    faces = train("ddpm", "faces", str(tmp_path / "faces"), {"widths": [8, 8], "batch_size": 4, "steps": 2, **FAST},
                  progress=False)
    with pytest.raises(GenError, match="has no class labels"):
        train_noisy_classifier(str(faces.path), str(tmp_path / "d"), TINY, progress=False)
    assert not (tmp_path / "d").exists()


def test_a_classifier_for_another_image_size_is_refused_at_export(guided, tmp_path):
    ddpm_run, clf_run, _ = guided
    big = train("ddpm", "digits", str(tmp_path / "ddpm16"), {"widths": [8, 8], "batch_size": 4, "steps": 2, **FAST},
                image_size=16, progress=False)
    with pytest.raises(GenError, match="trained for image size 8, but the DDPM .* has 16"):
        with_classifier(str(big.path), str(clf_run))
    r = gen("export", str(big.path), "--classifier", str(clf_run), "--out", str(tmp_path / "bundle"), check=False)
    assert r.returncode != 0 and "trained for image size 8, but the DDPM" in r.stderr
    assert not (tmp_path / "bundle").exists()
    with pytest.raises(GenError, match="is not a run of `gen train noisy-classifier`"):
        with_classifier(str(ddpm_run), str(ddpm_run))
    # attached to the DDPM it was trained beside, it is the classifier run's own bundle
    attached = export_run(str(ddpm_run), str(tmp_path / "attached"), state=with_classifier(str(ddpm_run), str(clf_run)),
                          also_from=(str(clf_run),), progress=lambda *_: None)
    args = {"n": 3, "seed": 2, "steps": 4, "labels": 5, "classifier_scale": 3.0}
    own = export_run(str(clf_run), str(tmp_path / "own"), progress=lambda *_: None)
    assert np.array_equal(Sampler(str(attached), threads=1).generate(**args), Sampler(str(own), threads=1).generate(**args))


def test_cli_trains_resumes_and_generates(guided, tmp_path):
    ddpm_run, _, bundle = guided
    out = tmp_path / "clf"
    r = gen("train", "noisy-classifier", str(ddpm_run), "--out", str(out), "--steps", "6", "--batch-size", "8",
            "--classifier-width", "4", "--checkpoint-every", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (out / "samples.png").is_file() and (out / "weights.safetensors").is_file()
    resumed = train_noisy_classifier(str(ddpm_run), str(out), {"steps": 8}, resume=True, progress=False)
    assert [json.loads(line)["step"] for line in (resumed.path / "metrics.jsonl").read_text().splitlines()][-1] == 8
    r = gen("generate", str(bundle), "--label", "3", "--classifier-scale", "2", "--steps", "3", "--n", "4",
            "--out", str(tmp_path / "g.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.png").is_file()
