"""`gen train sd-lora` on captioned images, its LoRA in plain diffusers, and LoRA/base errors."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from gen.errors import GenError
from gen.export.sd_export import export_sd
from gen.recipes.registry import load_pipeline
from gen.recipes.tiny_sd import build_tiny_sd
from gen.runtime.sampler import Sampler
from gen.trainkit.data.captions import load_captioned
from gen.trainkit.sd.lora import train_lora


def captioned_folder(root, n=8):
    """Digits as RGB PNGs: half captioned in metadata.jsonl, half by .txt files."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    root.mkdir()
    rows = []
    for i in range(n):
        name = f"d{i}.png"
        Image.fromarray((d.images[i] * 15).astype(np.uint8)).convert("RGB").resize((64, 64)).save(root / name)
        caption = f"a handwritten digit {d.target[i]}"
        if i % 2:
            (root / f"d{i}.txt").write_text(caption)
        else:
            rows.append(json.dumps({"file_name": name, "text": caption}))
    (root / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    data = captioned_folder(root / "data")
    run, change = train_lora(None, str(data), str(root / "run"), {"steps": 30, "lr": 1e-2, "sample_steps": 5},
                             progress=False)
    return run, change


def test_training_changes_the_model_and_writes_its_files(lora_run):
    run, change = lora_run
    assert change > 1e-3  # samples before vs after, same prompts and seed
    for name in ("lora.safetensors", "samples_before.png", "samples_after.png", "config.json", "metrics.jsonl"):
        assert (run.path / name).is_file(), name
    config = json.loads((run.path / "config.json").read_text())
    assert config["base"] == "tiny-sd" and config["rank"] == 4 and config["images"] == 8
    keys = load_file(str(run.path / "lora.safetensors"))
    assert keys and all(".lora." in k or "lora_" in k for k in keys)


def test_saved_lora_loads_in_diffusers_and_matches_gens_eager_path(lora_run, tmp_path):
    run, _ = lora_run
    pipe = build_tiny_sd()
    pipe.load_lora_weights(str(run.path), weight_name="lora.safetensors")  # plain diffusers, not fused
    latents = np.random.default_rng(2).standard_normal((1, 4, 8, 8), dtype=np.float32)
    ref = pipe("a handwritten digit 3", num_inference_steps=6, latents=torch.from_numpy(latents),
               output_type="np").images.transpose(0, 3, 1, 2) * 2 - 1
    bundle = export_sd("sd-lora", str(tmp_path / "b"), lora=str(run.path), progress=lambda *_: None)
    kw = {"steps": 6, "seed": 2, "scheduler": "ddim"}
    eager = Sampler(str(bundle), backend="eager").generate("a handwritten digit 3", **kw)
    assert np.abs(eager - ref).max() <= 1e-3
    base = Sampler(str(bundle)).generate("a handwritten digit 3", **kw)
    assert np.abs(base - ref).max() <= 1e-3


def test_captions_are_required(tmp_path):
    data = captioned_folder(tmp_path / "data", n=2)
    (data / "d1.txt").unlink()
    with pytest.raises(GenError, match="d1.png has no caption"):
        load_captioned(str(data), 64)
    (data / "metadata.jsonl").write_text("{not json\n")
    with pytest.raises(GenError, match=r"metadata.jsonl:1: expected"):
        load_captioned(str(data), 64)


def test_lora_for_another_architecture_is_refused(lora_run, tmp_path):
    run, _ = lora_run
    tensors = load_file(str(run.path / "lora.safetensors"))
    wrong = {k: (torch.zeros(v.shape[0], v.shape[1] + 16) if "down" in k or "lora_A" in k else v) for k, v in tensors.items()}
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(GenError, match="does not fit this base model"):
        load_pipeline("sd-lora", lora=str(tmp_path / "wrong.safetensors"), progress=lambda *_: None)
    save_file({"unet.nowhere.lora.down.weight": torch.zeros(4, 8)}, str(tmp_path / "unmatched.safetensors"))
    with pytest.raises(GenError, match="does not fit this base model|changed no weight"):
        load_pipeline("sd-lora", lora=str(tmp_path / "unmatched.safetensors"), progress=lambda *_: None)


def test_pickled_lora_is_never_unpickled(tmp_path):
    evil = tmp_path / "lora.safetensors"
    torch.save({"x": torch.zeros(1)}, evil)
    with pytest.raises(GenError, match="pickle|torch.save"):
        load_pipeline("sd-lora", lora=str(evil), progress=lambda *_: None)


@pytest.mark.parametrize("args,message", [
    ({"model": "sd", "base": "/no/such/folder"}, "folder not found"),
    ({"model": "sd-lora", "base": "/no/such/folder"}, "folder not found"),
    ({"model": "sd", "base": "nobody/no-such-model"}, "Hugging Face cache"),
    ({"model": "tiny-sd", "base": "x"}, "takes no --base"),
    ({"model": "sd", "lora": __file__}, "use --model sd-lora"),
    ({"model": "sdxl"}, "unknown --model 'sdxl'"),
    ({"model": "sd-lora", "lora": "/no/such/lora.safetensors"}, "file not found"),
])
def test_bad_model_arguments_are_named(args, message):
    with pytest.raises(GenError, match=message):
        load_pipeline(progress=lambda *_: None, **args)


def test_base_folder_without_model_index(tmp_path):
    with pytest.raises(GenError, match="no model_index.json"):
        load_pipeline("sd", base=str(tmp_path), progress=lambda *_: None)
