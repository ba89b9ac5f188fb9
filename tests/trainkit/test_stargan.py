"""StarGAN: three disjoint stroke domains, training that resumes bit-identically, evaluation of every
ordered pair, and the one-generator bundle (ORT against eager, target_domain by name or index, bad
input refused) in Python and on the command line."""

import numpy as np
import pytest
import torch
from PIL import Image

from gen.errors import GenError
from gen.fileio import load_safetensors
from gen.runtime.sampler import Sampler
from gen.trainkit.data.domains import domain_classes, load_domains
from gen.trainkit.train import train
from tests.cli.test_cli import gen_here as gen  # in process: the CLI path without a new interpreter

TINY = {"width": 4, "blocks": 1, "batch_size": 4, "log_every": 4, "sample_every": 100, "checkpoint_every": 4}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny run, resumed half-way in a second directory, and its fp32 + fp16 bundle."""
    from gen.export.onnx_export import export_run
    from gen.trainkit.families.stargan.trainer import StarGANTrainer

    root = tmp_path_factory.mktemp("stargan")
    whole = train("stargan", "digits-strokes", str(root / "whole"), {**TINY, "steps": 8}, progress=False)
    step = StarGANTrainer.train_step  # the learning rate decays over the whole run: stop one at step 5 of 8
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(StarGANTrainer, "train_step", lambda self, batch, g, i: step(self, batch, g, i) if i < 5 else _stop())
        train("stargan", "digits-strokes", str(root / "half"), {**TINY, "steps": 8}, progress=False)
    resumed = train("stargan", "digits-strokes", str(root / "half"), {}, resume=True, progress=False)
    bundle = root / "bundle"
    export_run(str(whole.path), str(bundle), precisions=("fp32", "fp16"), progress=lambda *_: None)
    return whole, resumed, str(bundle)


def _stop():
    raise KeyboardInterrupt


def test_three_disjoint_stroke_domains_and_bad_folders(tmp_path):
    data = load_domains("digits-strokes")
    assert data.class_names == ["thin", "regular", "thick"] and data.train_x.shape[1:] == (1, 16, 16)
    assert len(data.train_x) + len(data.test_x) == 1797  # every digit once, in one domain
    ink = [(data.train_x[data.train_y == d] > 0).mean() for d in range(3)]
    assert ink[0] < ink[1] < ink[2]
    by_digit = domain_classes("digits-strokes", 16, 1)
    assert by_digit.num_classes == 30 and np.array_equal(by_digit.train_y // 10, data.train_y)
    (tmp_path / "one").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "one" / "a.png")
    with pytest.raises(GenError, match="one sub-folder of images per domain .at least two.; found 1 sub-folder"):
        load_domains(str(tmp_path))
    with pytest.raises(GenError, match="--data must be digits-strokes or a folder"):
        load_domains("digits-bold")


def test_resume_is_bit_identical_and_eval_scores_every_pair(tiny, quick_metric_classifier):
    whole, resumed, _ = tiny
    a, _ = load_safetensors(whole.state_path)  # generator, discriminator and both optimizers
    b, _ = load_safetensors(resumed.state_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from gen.trainkit.eval.evaluate import evaluate_run

    result = evaluate_run(str(whole.path))
    assert set(result["pairs"]) == {f"{s}->{t}" for s in ("thin", "regular", "thick")
                                    for t in ("thin", "regular", "thick") if s != t}
    for m in result["pairs"].values():
        assert 0 <= m["accuracy"] <= 1 and m["fd_input_vs_target"] > 10 and m["cycle_l1"] > 0
    assert result["classifier"]["metric_classes"] == 30 and (whole.path / "eval_translations.png").is_file()


def test_bundle_translates_by_name_or_index_ort_matches_eager_and_refuses_bad_input(tiny):
    _, _, path = tiny
    thin = load_domains("digits-strokes").test_x[:3]
    ort = Sampler(path).generate(image=thin, target_domain="thick")
    eager = Sampler(path, backend="eager").generate(image=thin, target_domain="thick")
    assert ort.shape == (3, 1, 16, 16) and np.abs(ort - eager).max() <= 1e-5
    assert np.array_equal(ort, Sampler(path).generate(image=thin, target_domain=2))
    assert np.abs(ort - Sampler(path).generate(image=thin, target_domain="thin")).max() > 1e-4
    sampler = Sampler(path)
    assert sampler.source.argument("target_domain") == {"choices": ["thin", "regular", "thick"]}
    served = {i["name"]: i for i in sampler.bundle.spec.served_inputs(sampler.bundle)}
    assert served["target_domain"]["dtype"] == "bytes" and served["image"]["dtype"] == "uint8"
    for kwargs, message in [({"image": thin, "target_domain": "bold"}, ("unknown target_domain 'bold'; this bundle's "
                                                                         "domains are thin, regular, thick .or an index 0..2.")),
                            ({"image": thin, "target_domain": 3}, "unknown target_domain '3'"),
                            ({"image": thin}, "pass target_domain="),
                            ({"image": thin, "target_domain": 1.5}, "target_domain must be a name or an index"),
                            ({"target_domain": "thin"}, "pass image="),
                            ({"image": np.zeros((16, 16, 5), np.uint8), "target_domain": "thin"}, "channel")]:
        with pytest.raises(GenError, match=message):
            Sampler(path).generate(**kwargs)


def test_cli_generate_with_target_domain(tiny, tmp_path):
    _, _, path = tiny
    x = load_domains("digits-strokes").test_x[0, 0]
    Image.fromarray(np.round((x + 1) * 127.5).astype(np.uint8)).save(tmp_path / "in.png")
    gen("generate", path, "--image", tmp_path / "in.png", "--target-domain", "thick", "--out", tmp_path / "out.png")
    expected = Sampler(path).generate(image=str(tmp_path / "in.png"), target_domain="thick", output="uint8")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), expected[0, ..., 0])
    p = gen("generate", path, "--image", tmp_path / "in.png", "--target-domain", "bold", "--out", tmp_path / "x.png",
            check=False)
    assert p.returncode == 2 and "unknown target_domain 'bold'" in p.stderr and not (tmp_path / "x.png").exists()


def test_the_projection_head_judges_each_image_against_its_claimed_domain():
    from gen.nets.stargan import StarDiscriminator

    torch.manual_seed(0)
    plain, projected = StarDiscriminator(16, 1, 3, 8), StarDiscriminator(16, 1, 3, 8, projection=True)
    projected.load_state_dict(plain.state_dict(), strict=False)
    x, domain = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])
    assert torch.equal(projected(x, domain)[0], plain(x)[0])  # zero embeddings: the plain head to start with
    with torch.no_grad():
        projected.embed.weight.normal_()
    thick, thin = projected(x, torch.full((4,), 2))[0], projected(x, torch.zeros(4, dtype=torch.int64))[0]
    assert not torch.allclose(thick, thin)  # the same images score differently as claims of different domains
    with pytest.raises(ValueError, match="needs each image's claimed domain"):
        projected(x)
