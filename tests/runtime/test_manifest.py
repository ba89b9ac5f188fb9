"""The typed manifest and the family registry: v1 bundles still read and sample the same images,
bad manifests are refused by key, and family arguments are refused by name."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gen.errors import GenError
from gen.runtime.bundle import load_bundle
from gen.runtime.families import family_names, get_family
from gen.runtime.manifest import read_manifest
from gen.runtime.sampler import Sampler

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_bundles_written_by_schema_v1_load_and_sample_the_images_they_gave():
    """tests/fixtures: bundles exported by wave 1 (before the typed manifest), with their images."""
    ref = np.load(FIXTURES / "bundle-v1-images.npz")
    cgan = Sampler(str(FIXTURES / "bundle-v1-cgan")).generate(n=3, seed=5, labels=[1, 2, 3])
    cddpm = Sampler(str(FIXTURES / "bundle-v1-cddpm")).generate(n=2, seed=5, steps=4, scheduler="ddim", labels=4,
                                                               guidance=2.0)
    eager = Sampler(str(FIXTURES / "bundle-v1-cddpm"), backend="eager").generate(n=2, seed=5, steps=3,
                                                                                 scheduler="ddpm", labels=4)
    # the fixtures were drawn on an AVX-512 CPU; on an AVX2 one (AMD EPYC, 2026-12-03) ONNX Runtime's
    # and torch's float32 kernels round differently, and 4 guided steps grow that to 8.7e-5 and 4.9e-6
    # (an 8-bit image's step is 7.8e-3, so these are still the same images)
    assert np.abs(cgan - ref["cgan"]).max() <= 1e-6
    assert np.abs(cddpm - ref["cddpm"]).max() <= 5e-4
    assert np.abs(eager - ref["cddpm_eager"]).max() <= 5e-5


@pytest.mark.parametrize("name", ["bundle-v1-cgan", "bundle-v1-cddpm"])
def test_v1_manifest_round_trips_through_the_schema(name):
    data = json.loads((FIXTURES / name / "gen.json").read_text())
    assert read_manifest(data, name).to_json() == data


def _broken(tmp_path, change):
    b = tmp_path / "b"
    shutil.copytree(FIXTURES / "bundle-v1-cgan", b)
    m = json.loads((b / "gen.json").read_text())
    change(m)
    (b / "gen.json").write_text(json.dumps(m))
    return b


@pytest.mark.parametrize("change,message", [
    (lambda m: m["sampling"].pop("z_dim"), "lacks 'sampling.z_dim'"),
    (lambda m: m["image"].update(height="8"), r"image.height must be an integer, got a string"),
    (lambda m: m["components"]["generator"]["files"]["fp32"].pop("bytes"), "lacks 'components.generator.files.fp32.bytes'"),
    (lambda m: m["components"]["generator"].update(inputs={}), "components.generator.inputs must be a list"),
    (lambda m: m.update(family="biggan"), "unknown model family 'biggan'"),
    (lambda m: m["components"].update(decoder=m["components"].pop("generator")), "lacks component 'generator'"),
    (lambda m: m["conditioning"].update(num_classes=True), "conditioning.num_classes must be an integer"),
    (lambda m: m.pop("image"), "lacks 'image'"),
])
def test_bad_manifests_are_refused_at_load_with_the_key(tmp_path, change, message):
    with pytest.raises(GenError, match=message):
        load_bundle(_broken(tmp_path, change))


def test_every_family_is_registered_and_an_unknown_one_is_an_error():
    assert family_names() == ["ae", "cyclegan", "dae", "ddpm", "gan", "pix2pix", "sd", "srgan", "stargan", "stylegan", "vae", "vqvae"]
    with pytest.raises(GenError, match="unknown model family 'nope'"):
        get_family("nope")


@pytest.mark.parametrize("kwargs,message", [
    ({"foo": 1}, "unknown generate\\(\\) argument 'foo'; this gan bundle takes n, seed, labels"),
    ({"eta": 0.5}, "eta applies to the ddim scheduler; this is a gan bundle"),
    ({"guidance": 2.0}, "guidance applies to guided diffusion bundles; this is a gan bundle"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"labels": 1.5}, "labels must be integers"),
])
def test_arguments_a_family_does_not_take_are_refused_by_name(kwargs, message):
    with pytest.raises(GenError, match=message):
        Sampler(str(FIXTURES / "bundle-v1-cgan")).generate(n=2, **kwargs)


def test_diffusion_argument_rules(bundles):
    s = Sampler(str(bundles["cddpm"]))
    with pytest.raises(GenError, match="eta = 0.5 applies to the ddim scheduler only"):
        s.generate(n=1, steps=2, scheduler="ddpm", eta=0.5)
    with pytest.raises(GenError, match="eta must be >= 0"):
        s.generate(n=1, steps=2, scheduler="ddim", eta=-1.0)
    with pytest.raises(GenError, match="guidance must be a finite number"):
        s.generate(n=1, steps=2, guidance=float("nan"))


def test_served_inputs_follow_the_family_declarations(bundles, sd_bundle):
    names = lambda b: {i["name"]: i["optional"] for i in load_bundle(b).spec.served_inputs(load_bundle(b))}  # noqa: E731
    assert names(bundles["gan"]) == {"n": False, "seed": True}
    assert names(bundles["ddpm"]) == {"n": False, "seed": True, "steps": True, "scheduler": True}
    assert names(sd_bundle) == {"n": False, "seed": True, "prompt": False, "negative_prompt": True, "steps": True,
                                "scheduler": True, "guidance": True, "height": True, "width": True, "image": True,
                                "mask": True, "strength": True, "decoder": True}


def test_on_step_sees_every_step_and_can_stop_the_call(bundles):
    s = Sampler(str(bundles["cddpm"]))
    seen = []
    s.generate(n=2, steps=4, on_step=lambda i, steps, x0: seen.append((i, steps, x0.shape)))
    assert seen == [(i, 4, (2, 1, 8, 8)) for i in range(4)]

    def stop(i, steps, x0):
        if i == 1:
            raise GenError("stopped")
    with pytest.raises(GenError, match="stopped"):
        s.generate(n=2, steps=4, on_step=stop)
