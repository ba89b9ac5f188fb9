"""`--model NAME` resolves here: a recipe says where the base pipeline comes from and whether a
LoRA is fused into it.

    sd       a Stable Diffusion base: --base DIR (diffusers format) or a model id in the HF cache
    sd-lora  the same base plus a LoRA (--lora FILE, a run of `gen train sd-lora` or `gen distill
             lcm-lora`, or a diffusers-format folder), fused; an LCM-LoRA is recognised (gen.recipes.lcm)
    tiny-sd  the SD architecture at toy size with random weights, built offline (gen.recipes.tiny_sd)

Nothing is downloaded: hub ids load with local_files_only, so a missing model fails fast and says
how to fix it instead of hanging on the network.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gen.errors import GenError

MODELS = ("sd", "sd-lora", "tiny-sd")
TINY = "tiny-sd"
LORA = "sd-lora"  # the recipe that fuses --lora into its base
LORA_FILE = "lora.safetensors"
EMBEDDINGS_FILE = "learned_embeds.safetensors"  # diffusers' textual inversion file (gen train textual-inversion)
DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' save_lora_weights, the Hub's LoRA repos
DEFAULT_HUB_BASE = "stable-diffusion-v1-5/stable-diffusion-v1-5"


@dataclass
class Resolved:
    pipe: object
    base: str
    lora: str | None
    lora_scale: float
    notes: list
    lora_sha256: str | None = None
    lcm: dict | None = None  # an LCM-LoRA's scheduler settings (gen.recipes.lcm.recognise)
    embeddings: list | None = None  # textual inversions loaded: [{"path", "sha256", "tokens"}]


def check_model(model: str) -> None:
    if model not in MODELS:
        raise GenError(f"unknown --model {model!r}; choose one of {', '.join(MODELS)}")


def resolve_lora(lora: str | None) -> tuple[Path | None, dict]:
    """A LoRA file, a gen run directory (its lora.safetensors and config), or a diffusers-format
    folder (its pytorch_lora_weights.safetensors)."""
    if lora is None:
        return None, {}
    p = Path(lora)
    if p.is_dir():
        from gen.fileio import read_json

        config = read_json(p / "config.json", "LoRA run config") if (p / "config.json").is_file() else {}
        if not isinstance(config, dict) or "family" not in config:
            config = {}  # a config.json gen did not write says nothing about the LoRA
        found = [p / name for name in (LORA_FILE, DIFFUSERS_LORA_FILE) if (p / name).is_file()]
        if not found:
            raise GenError(f"--lora {lora}: directory has neither {LORA_FILE} (a run of `gen train sd-lora` or "
                           f"`gen distill lcm-lora`) nor {DIFFUSERS_LORA_FILE} (a diffusers-format LoRA folder)")
        return found[0], config
    if not p.is_file():
        raise GenError(f"--lora {lora}: file not found")
    return p, {}


def load_pipeline(model: str, base: str | None = None, lora: str | None = None, lora_scale: float = 1.0,
                  progress=print, embeddings: tuple[str, ...] = ()) -> Resolved:
    """The fp32 CPU pipeline for `model`, with the LoRA (if any) fused into its weights and the
    textual inversions in `embeddings` (files or runs) added to its tokenizer and text encoder."""
    from gen.recipes.lcm import check_fits, recognise

    check_model(model)
    lora_path, lora_run = resolve_lora(lora)
    embedding_files = [resolve_embedding(e) for e in embeddings]
    notes = []
    if model == TINY:
        if base is not None:
            raise GenError("--model tiny-sd is built from configs and takes no --base; use --model sd --base DIR")
        if lora is not None:
            raise GenError("--model tiny-sd takes no --lora; use --model sd-lora (its default base is tiny-sd)")
    if model == "sd" and lora is not None:
        raise GenError("--model sd is the base alone; use --model sd-lora to fuse --lora")
    base = base or lora_run.get("base") or next((run["base"] for _, run in embedding_files if run.get("base")), None)
    if base is None and model == "sd-lora":
        base = TINY
        notes.append("no --base given: sd-lora uses the built-in tiny-sd (random weights; a real base needs --base DIR)")
    if base is None:
        base = TINY if model == TINY else DEFAULT_HUB_BASE
    lcm = recognise(lora, lora_run) if model == "sd-lora" else None
    pipe = _load_base(base)
    check_fits(lcm, lora_run, pipe, lora)
    label, digest = None, None
    if model == "sd-lora":
        if lora_path is None:
            if base != TINY:
                raise GenError("--model sd-lora needs --lora FILE (or a run from `gen train sd-lora`)")
            notes.append("no --lora given: fusing a seeded demo LoRA into tiny-sd")
            with tempfile.TemporaryDirectory(prefix="gen-demo-lora-") as d:
                demo = demo_lora(pipe, Path(d))
                digest = _sha256(demo)
                fuse_lora(pipe, demo, lora_scale)
            label = "demo (seed 0, rank 4)"
        else:
            digest = _sha256(lora_path)
            fuse_lora(pipe, lora_path, lora_scale)
            label = str(lora_path)
    loaded = [load_embedding(pipe, path) for path, _ in embedding_files]
    if lcm is not None:
        notes.append(f"an LCM-LoRA ({lcm['recognised_by']}): sample it with the lcm scheduler, few steps, no guidance")
    for note in notes:
        progress(note)
    return Resolved(pipe, base, label, lora_scale, notes, digest, lcm, loaded or None)


def resolve_embedding(spec: str) -> tuple[Path, dict]:
    """A textual inversion: a .safetensors file, or a run of `gen train textual-inversion` (its
    learned_embeds.safetensors and config) or a diffusers-format folder holding that file."""
    p = Path(spec)
    if p.is_dir():
        from gen.fileio import read_json

        config = read_json(p / "config.json", "textual inversion run config") if (p / "config.json").is_file() else {}
        if not isinstance(config, dict) or config.get("family") != "textual-inversion":
            config = {}
        if not (p / EMBEDDINGS_FILE).is_file():
            raise GenError(f"--textual-inversion {spec}: directory has no {EMBEDDINGS_FILE} (a run of `gen train "
                           "textual-inversion`, or a diffusers-format textual inversion folder)")
        return p / EMBEDDINGS_FILE, config
    if not p.is_file():
        raise GenError(f"--textual-inversion {spec}: file not found")
    return p, {}


def load_embedding(pipe, path: Path) -> dict:
    """Add one textual inversion's tokens to the pipeline (diffusers' loader, safetensors only)."""
    from gen.fileio import check_safetensors

    check_safetensors(path)
    before = set(pipe.tokenizer.get_vocab())
    try:
        pipe.load_textual_inversion(str(path), use_safetensors=True)
    except (ValueError, RuntimeError, KeyError) as e:
        raise GenError(f"--textual-inversion {path} cannot be loaded into this base: {str(e).splitlines()[0]}") from None
    tokens = sorted(set(pipe.tokenizer.get_vocab()) - before, key=pipe.tokenizer.convert_tokens_to_ids)
    return {"path": str(path), "sha256": _sha256(path), "tokens": tokens}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_base(base: str):
    if base == TINY:
        from gen.recipes.tiny_sd import build_tiny_sd

        return build_tiny_sd()
    path = Path(base)
    looks_like_id = base.count("/") == 1 and not base.startswith((".", "/")) and not path.exists()
    if not path.exists() and not looks_like_id:
        raise GenError(f"--base {base}: folder not found (expected a diffusers-format Stable Diffusion folder "
                       "with model_index.json, or a model id already in the Hugging Face cache)")
    if path.exists() and not (path / "model_index.json").is_file():
        raise GenError(f"--base {base}: no model_index.json; it is not a diffusers-format pipeline folder "
                       "(save one with pipe.save_pretrained(DIR))")
    from gen.hf import quiet_hf_logs

    quiet_hf_logs()
    from diffusers import StableDiffusionPipeline
    try:
        pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False,
                                                       local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, EnvironmentError) as e:
        where = "folder" if path.exists() else "Hugging Face cache (nothing is downloaded; pass --base DIR)"
        raise GenError(f"--base {base}: cannot load a Stable Diffusion pipeline from the {where}: "
                       f"{str(e).splitlines()[0]}") from None
    pipe.set_progress_bar_config(disable=True)
    for m in (pipe.unet, pipe.vae, pipe.text_encoder):
        m.eval()
    return pipe


def fuse_lora(pipe, lora_path: Path, scale: float) -> None:
    """Load a diffusers-format LoRA, fold it into the weights, and drop the adapter layers."""
    import diffusers.utils.logging as diffusers_logs

    from gen.fileio import check_safetensors

    check_safetensors(lora_path)
    level = diffusers_logs.get_verbosity()
    diffusers_logs.set_verbosity(diffusers_logs.CRITICAL)  # it logs a failed load in full, then raises it
    try:
        pipe.load_lora_weights(str(lora_path.parent), weight_name=lora_path.name, adapter_name="gen")
        if not any(pipe.get_list_adapters().values()):  # diffusers only warns when no key matches
            raise GenError(f"--lora {lora_path} changed no weight of this model: its keys match none of its "
                           "layers (a LoRA for another model family?)")
        pipe.fuse_lora(lora_scale=scale)
        pipe.unload_lora_weights()
    except (RuntimeError, ValueError, KeyError, IndexError) as e:  # peft/diffusers raise any of these on a mismatch
        raise GenError(f"--lora {lora_path} does not fit this base model (a LoRA trained for another "
                       f"architecture?): {_first_problem(e)}") from None
    finally:
        diffusers_logs.set_verbosity(level)


def _first_problem(error: Exception) -> str:
    """torch lists every mismatched tensor; one, and how many more, says it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = [line for line in lines if line.startswith(("size mismatch", "Missing key", "Unexpected key"))]
    if not detail:
        return lines[0] if lines else type(error).__name__
    return detail[0] + (f" (and {len(detail) - 1} more)" if len(detail) > 1 else "")


def demo_lora(pipe, directory: Path, rank: int = 4, seed: int = 0) -> Path:
    """A seeded random LoRA on the UNet attention projections, so the fuse path runs with no training."""
    import copy

    import torch

    from gen.nets.lora import add_lora, save_lora

    unet = copy.deepcopy(pipe.unet)  # the base stays free of adapter layers
    add_lora(unet, rank)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    path = directory / LORA_FILE
    save_lora(unet, path)
    return path
