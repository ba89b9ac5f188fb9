"""Lay out our exported SD ONNX files the way optimum's `ORTStableDiffusionPipeline.from_pretrained` loads them.

Main-venv side: imports neither optimum nor torch (only `onnx`, to find external-data files). The folder is

    model_index.json                 {"_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", CLS],
                                      "tokenizer": ["transformers", "CLIPTokenizerFast"], ...}
    scheduler/scheduler_config.json
    tokenizer/                       copied (small): tokenizer.json (all transformers 5 saves) and/or
                                     vocab.json + merges.txt; CLIPTokenizerFast reads either, and it is the
                                     tokenizers-backed class the main venv's transformers 5 CLIPTokenizer is
    text_encoder/model.onnx + config.json        (the CLIPTextConfig dict; num_hidden_layers is read)
    unet/model.onnx + config.json                (the UNet2DConditionModel config)
    vae_decoder/model.onnx + config.json         (the AutoencoderKL config; needs scaling_factor, block_out_channels)
    vae_encoder/model.onnx + config.json         (optional; img2img/inpaint only)

Each model.onnx is a link to the original file, and so is every external-data file it references, under the
exact relative `location` string stored in the ONNX proto: ONNX Runtime resolves that location against the
directory of the path it was given (the link's folder), not against the link's target, so the data files
must sit next to the link. The name of the ONNX file itself does not matter to the data lookup; only the
recorded location does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

COMPONENTS = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
MODEL_CLASSES = {"text_encoder": ["transformers", "CLIPTextModel"], "unet": ["diffusers", "UNet2DConditionModel"],
                 "vae": ["diffusers", "AutoencoderKL"]}


def external_data_files(onnx_path: str | Path) -> list[str]:
    """The relative `location`s of the external-data files an ONNX model references (empty if none)."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    model = onnx.load(str(onnx_path), load_external_data=False)
    locations = set()
    for tensor in _get_all_tensors(model):
        if uses_external_data(tensor):
            locations.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(locations)


def _link(src: Path, dst: Path, mode: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    if mode == "symlink":
        dst.symlink_to(src.resolve())
    elif mode == "hardlink":
        os.link(src, dst)
    else:
        raise ValueError(f"link mode must be 'symlink' or 'hardlink', got {mode!r}")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_optimum_layout(components: dict[str, str | Path], tokenizer_dir: str | Path, scheduler_config: dict,
                         unet_config: dict, vae_config: dict, text_encoder_config: dict, out_dir: str | Path,
                         link: str = "symlink") -> Path:
    """Create `out_dir` so that `ORTStableDiffusionPipeline.from_pretrained(out_dir, export=False)` loads it offline.

    components: {"text_encoder"|"unet"|"vae_decoder"|"vae_encoder": path to .onnx}; the first three are required.
    scheduler_config: a diffusers scheduler config dict; its "_class_name" picks the class (DDIMScheduler if absent).
    link: "symlink" (default; absolute targets) or "hardlink" (same filesystem only). Nothing big is copied.
    """
    missing = {"text_encoder", "unet", "vae_decoder"} - set(components)
    unknown = set(components) - set(COMPONENTS)
    if missing or unknown:
        raise ValueError(f"components: missing {sorted(missing)}, unknown {sorted(unknown)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    configs = {"text_encoder": text_encoder_config, "unet": unet_config,
               "vae_decoder": vae_config, "vae_encoder": vae_config}
    for name, src in components.items():
        src = Path(src)
        sub = out / name
        if sub.exists():
            shutil.rmtree(sub)
        _link(src, sub / "model.onnx", link)
        for location in external_data_files(src):
            _link(src.parent / location, sub / location, link)
        _write_json(sub / "config.json", dict(configs[name]))  # optimum refuses a component without it

    tok_src, tok_dst = Path(tokenizer_dir), out / "tokenizer"
    if tok_dst.exists():
        shutil.rmtree(tok_dst)
    shutil.copytree(tok_src, tok_dst)
    slow_files = (tok_src / "vocab.json").is_file() and (tok_src / "merges.txt").is_file()
    if not slow_files and not (tok_src / "tokenizer.json").is_file():
        raise ValueError(f"{tok_src}: needs vocab.json + merges.txt, or tokenizer.json")

    scheduler_config = dict(scheduler_config)
    scheduler_class = scheduler_config.setdefault("_class_name", "DDIMScheduler")
    _write_json(out / "scheduler" / "scheduler_config.json", scheduler_config)

    _write_json(out / "model_index.json", {
        "_class_name": "StableDiffusionPipeline",
        "scheduler": ["diffusers", scheduler_class],
        "tokenizer": ["transformers", "CLIPTokenizerFast"],
        **MODEL_CLASSES,
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
    })
    return out
