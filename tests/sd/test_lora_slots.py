"""LoRA as a request argument: adapters added to a slot bundle (gen lora add) equal the same adapter
fused at export, rows with different adapters share each UNet call, and bad adapters are refused."""

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from gen.errors import GenError
from gen.outputs import output_lock
from gen.runtime.backends.recording import RecordingBackend
from gen.runtime.bundle import load_bundle
from gen.runtime.lora_store import add_lora, list_loras, remove_lora
from gen.runtime.sampler import Sampler
from tests.cli.test_cli import gen_here as gen

KW = {"steps": 2, "seed": 5, "scheduler": "ddim"}


@pytest.fixture(scope="module")
def slots(sd_slots_bundle, tmp_path_factory):
    """A copy of the slot bundle with the demo adapter and three variants of it: half, negated, rank 2."""
    src, files = sd_slots_bundle
    bundle = tmp_path_factory.mktemp("slots") / "b"
    shutil.copytree(src, bundle)
    for name in ("demo", "half", "neg", "r2"):
        add_lora(str(bundle), str(files[name]), name)
    return bundle, files


def test_an_added_adapter_equals_the_same_adapter_fused_at_export(slots, sd_bundle):
    bundle, _ = slots
    fused = Sampler(str(sd_bundle)).generate("a red house", **KW)
    with Sampler(str(bundle), backend="ort") as s:
        added = s.generate("a red house", lora="demo", **KW)
        assert np.abs(added - fused).max() <= 1e-3
        base = s.generate("a red house", **KW)
        assert np.abs(base - fused).max() > 1e-2  # the adapter matters
        np.testing.assert_array_equal(s.generate("a red house", lora="", **KW), base)  # no adapter: the plain unet
        assert np.abs(s.generate("a red house", lora="demo", lora_scale=0.0, **KW) - base).max() <= 1e-5
        halved = s.generate("a red house", lora="demo", lora_scale=0.5, **KW)
        assert np.abs(halved - s.generate("a red house", lora="half", **KW)).max() <= 1e-5
    eager = Sampler(str(bundle), backend="eager").generate("a red house", lora="demo", **KW)
    assert np.abs(eager - fused).max() <= 1e-3


def test_eight_prompts_over_four_adapters_and_the_base_share_each_unet_call(slots):
    bundle, _ = slots
    prompts = ["a red house", "a cat", "a boat", "a tree", "a dog", "a car", "a hill", "a lake"]
    rows = ["demo", "half", "neg", "r2", "", "demo", "neg", "r2"]
    backend = RecordingBackend(load_bundle(bundle))
    mixed = Sampler(str(bundle), backend=backend).generate(prompts, lora=rows, **KW)
    calls = backend.recorded["unet_lora"]
    assert len(calls) == KW["steps"] and "unet" not in backend.recorded  # one call per step, all 16 rows (guidance)
    assert calls[0]["lora_down_0"].shape[0] == 16 and not calls[0]["lora_up_0"][4].any()  # the base row: zeros
    with Sampler(str(bundle), backend="ort") as s:
        for name in dict.fromkeys(rows):  # each row as in a batch where every row has that adapter
            alone = s.generate(prompts, lora=name, **KW) if name else s.generate(prompts, **KW)
            for i in (i for i, r in enumerate(rows) if r == name):
                assert np.abs(mixed[i] - alone[i]).max() <= 1e-5, (name, i)


def test_bad_adapters_and_arguments_are_refused_naming_them(slots, sd_bundle, tmp_path):
    import torch

    bundle, files = slots
    t = load_file(str(bundle / "loras" / "demo.safetensors"))
    key = next(k for k in t if ".down." in k)
    cases = {"pickled.safetensors": None, "other-base.safetensors": {**t, key: np.zeros((4, 48), np.float32)},
             "rank8.safetensors": {k: np.concatenate([v, v], axis=0 if ".down." in k else 1) for k, v in t.items()},
             "te.safetensors": {**t, "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.down.weight": t[key]},
             "ff.safetensors": {**t, "unet.down_blocks.0.attentions.0.proj_in.lora.down.weight": t[key]}}
    torch.save({"x": torch.zeros(2)}, tmp_path / "pickled.safetensors")
    for name, tensors in cases.items():
        if tensors is not None:
            save_file(tensors, str(tmp_path / name))
    for name, message in [("pickled", "pickled"), ("other-base", "does not fit this bundle's base"),
                          ("rank8", "rank 8, over this bundle's slot rank 4"), ("te", "adapts the text encoder"),
                          ("ff", "not one of this bundle's 32 slot layers")]:
        with pytest.raises(GenError, match=message):
            add_lora(str(bundle), str(tmp_path / f"{name}.safetensors"), name)
    other = tmp_path / "run-on-another-base"  # a gen LoRA run records its base
    other.mkdir()
    shutil.copy(files["half"], other / "lora.safetensors")
    (other / "config.json").write_text(json.dumps({"family": "sd-lora", "base": "./sd15"}))
    with pytest.raises(GenError, match="trained on base './sd15'; this bundle's base is 'tiny-sd'"):
        add_lora(str(bundle), str(other), "other")
    with pytest.raises(GenError, match="has an adapter of that name"):
        add_lora(str(bundle), str(files["half"]), "demo")
    with output_lock(bundle, "BUNDLE"), pytest.raises(GenError, match="BUNDLE"):  # a second writer
        add_lora(str(bundle), str(files["half"]), "other")
    assert sorted(list_loras(str(bundle))) == ["demo", "half", "neg", "r2"]  # nothing half-added
    with Sampler(str(bundle)) as s:
        with pytest.raises(GenError, match="unknown adapter 'nope'; this bundle's adapters: demo, half, neg, r2") as e:
            s.generate("x", lora="nope", steps=1)
        assert e.value.argument == "lora"
        for scale in (float("nan"), float("inf"), 5.0):
            with pytest.raises(GenError, match="lora_scale must be") as e:
                s.generate("x", lora="demo", lora_scale=scale, steps=1)
            assert e.value.argument == "lora_scale"
        with pytest.raises(GenError, match="lora_scale applies with lora="):
            s.generate("x", lora_scale=0.5, steps=1)
        with pytest.raises(GenError, match="one per prompt"):
            s.generate(["a", "b", "c"], lora=["demo", "half"], steps=1)
    with pytest.raises(GenError, match="lora applies to Stable Diffusion bundles exported with LoRA slots"):
        Sampler(str(sd_bundle)).generate("x", lora="demo", steps=1)


def test_peft_keys_and_alpha_read_as_diffusers_keys(slots, tmp_path):
    """PEFT's lora_A / lora_B names give the same factors; an alpha key scales by alpha / rank."""
    from gen.runtime.loras import Slots, read_factors

    bundle, files = slots
    t = load_file(str(files["demo"]))
    peft = {k.replace("unet.", "base_model.model.").replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B."): v
            for k, v in t.items()}
    layers = {k.rsplit(".lora_", 1)[0] for k in peft}
    halved = {**peft, **{f"{layer}.alpha": np.array(2.0, np.float32) for layer in layers}}  # alpha 2 / rank 4
    save_file(peft, str(tmp_path / "peft.safetensors"))
    save_file(halved, str(tmp_path / "alpha.safetensors"))
    slots_ = Slots.of(load_bundle(bundle).manifest)
    for (d0, u0), (d1, u1), (_, u2), (_, u3) in zip(read_factors(files["demo"], slots_),
                                                    read_factors(tmp_path / "peft.safetensors", slots_),
                                                    read_factors(tmp_path / "alpha.safetensors", slots_),
                                                    read_factors(files["half"], slots_)):
        np.testing.assert_array_equal(d0, d1)
        np.testing.assert_array_equal(u0, u1)
        np.testing.assert_allclose(u2, u3, rtol=1e-6)


def test_a_modified_adapter_is_refused_and_remove_takes_it_out(slots):
    bundle, files = slots
    add_lora(str(bundle), str(files["half"]), "tmp")
    (bundle / "loras" / "tmp.safetensors").write_bytes((files["neg"]).read_bytes())
    with Sampler(str(bundle)) as s, pytest.raises(GenError, match="missing or modified"):
        s.generate("x", lora="tmp", steps=1)
    remove_lora(str(bundle), "tmp")
    assert "tmp" not in list_loras(str(bundle)) and not (bundle / "loras" / "tmp.safetensors").exists()


def test_gen_lora_cli_and_gen_generate_lora(slots, tmp_path):
    bundle, files = slots
    r = gen("lora", "add", bundle, files["r2"], "--name", "cli")
    assert r.returncode == 0 and "rank 2, zero-padded to the slots' rank 4" in r.stdout, r.stderr
    assert "cli  rank 2  32 layers" in gen("lora", "list", bundle).stdout
    out = tmp_path / "g.png"
    r = gen("generate", bundle, "--prompt", "a cat", "--lora", "cli", "--lora-scale", "0.8", "--n", "1", "--steps", "2",
            "--backend", "ort", "--out", out)
    assert r.returncode == 0 and out.is_file(), r.stderr
    r = gen("generate", bundle, "--prompt", "a cat", "--lora", "zzz", "--steps", "2", "--out", out, check=False)
    assert r.returncode == 2 and "--lora" in r.stderr and "unknown adapter 'zzz'" in r.stderr
    assert gen("lora", "remove", bundle, "cli").returncode == 0
    assert "cli" not in json.loads((bundle / "loras" / "index.json").read_text())["adapters"]
    r = gen("lora", "add", bundle, files["half"], check=False)
    assert r.returncode != 0 and "--name" in r.stderr


def test_the_demo_offers_the_adapters_as_a_select_read_when_the_page_is_built(slots, tmp_path):
    from gen.demo.models import DemoModel
    from gen.demo.page import _control

    bundle, files = slots
    model = DemoModel("m", str(bundle), {"backend": "ort"})
    try:
        lora = next(a for a in model.describe()["arguments"] if a["name"] == "lora")
        assert lora["choices"] == sorted(list_loras(str(bundle)))
        add_lora(str(bundle), str(files["half"]), "late")  # added while the demo runs
        lora = next(a for a in model.describe()["arguments"] if a["name"] == "lora")
        assert "late" in lora["choices"] and "<option value='late'>late</option>" in _control(lora)
        assert "<select" in _control(lora)
    finally:
        model.close()
        remove_lora(str(bundle), "late")


def test_concurrent_requests_with_different_adapters_share_step_batched_unet_calls(slots):
    """Step-level batching (gen.runtime.step_batch) over adapters: four requests, four adapters, each
    arriving as its own generate(); their per-row factors ride along as feeds, so their steps share the
    slot UNet's calls, and each gets its single-request images."""
    from tests.runtime.test_step_batch import batched_sampler, run_all

    bundle, _ = slots
    requests = [{"prompt": p, "lora": name, **KW} for p, name in
                (("a red house", "demo"), ("a cat", "half"), ("a boat", "neg"), ("a tree", "r2"))]
    with Sampler(str(bundle), backend="ort", threads=1) as alone:
        expected = [alone.generate(**r) for r in requests]
    with batched_sampler(bundle) as sampler:
        got = run_all(sampler, requests)
        rows = sampler.backend.calls_by_rows
    for e, g in zip(expected, got):
        assert not isinstance(g, Exception), g
        assert np.abs(e - g).max() <= 1e-3
    assert max(rows) >= 4  # two requests' guided rows, at least, in one call: adapters merged
