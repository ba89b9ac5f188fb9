"""A full-size Stable Diffusion 1.5 architecture (random weights) through `gen export` and one ORT step.

SD 1.5's UNet is 3.4 GB in fp32, over protobuf's 2 GB limit, so this is the run that exercises the
external-data path end to end: export (weights in unet.onnx.data), onnx.checker on the file, parity
with eager, bundle loading, and a real denoising step on ONNX Runtime. Configs are SD 1.5's (UNet
320-640-1280-1280 with 768-wide cross attention, KL-f8 VAE 128-256-512-512, CLIP ViT-L/14 text
encoder with its 49408-token embedding); the tokenizer is gen's offline byte-level one.

    python benchmarks/sd15_fullsize.py            # ~4.5 GB per copy on disk; writes results/sd15_fullsize.json
    python benchmarks/sd15_fullsize.py --fp16     # also the fp16 variants (converted by path: the UNet is
                                                  # over 2 GB); writes results/sd15_fullsize_fp16.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sd15_pipeline(tokenizer_dir: Path, tiny: bool = False):
    """A random-weight StableDiffusionPipeline in SD 1.5's architecture, in memory; `tiny` shrinks every
    part (one text layer, UNet 32-64-64-64, VAE 32 wide) for a rehearsal of a script on a CPU."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from gen.recipes.clip_vocab import vocabulary, write_tokenizer_files
    from gen.recipes.tiny_sd import SCHEDULER_CONFIG

    vocab = vocabulary()
    torch.manual_seed(0)
    with torch.no_grad():
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=1 if tiny else 12,
            num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
            bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]))
        # the defaults are SD 1.5's layout
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768,
                                    **({"block_out_channels": (32, 64, 64, 64), "layers_per_block": 1} if tiny else {}))
        vae = AutoencoderKL(block_out_channels=(32,) * 4 if tiny else (128, 256, 512, 512), layers_per_block=2,
                            latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512)
    tokenizer = CLIPTokenizer.from_pretrained(str(write_tokenizer_files(tokenizer_dir)))
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=PNDMScheduler.from_config(SCHEDULER_CONFIG), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def build_sd15(folder: Path) -> dict:
    pipe = sd15_pipeline(folder / "_tok")
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return {k: sum(p.numel() for p in getattr(pipe, k).parameters()) for k in ("text_encoder", "unet", "vae")}


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=str(REPO / "build" / "sd15"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sd15_fullsize.json"))
    ap.add_argument("--keep", action="store_true", help="keep the ~13 GB of model, bundle and weights afterwards")
    ap.add_argument("--fp16", action="store_true", help="also export and check fp16 variants (one fp16 step too)")
    args = ap.parse_args()
    if args.fp16 and args.out == ap.get_default("out"):
        args.out = args.out.replace(".json", "_fp16.json")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gen.export.sd_export import export_sd
    from gen.fileio import write_json
    from gen.runtime.sampler import Sampler

    work = Path(args.work)
    base, bundle = work / "base", work / "bundle"
    report = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "cores": os.cpu_count()}
    t0 = time.perf_counter()
    report["params"] = build_sd15(base)
    report["build_s"] = round(time.perf_counter() - t0, 1)
    report["peak_rss_gib_after_build"] = round(peak_rss_gib(), 2)
    print(f"built in {report['build_s']} s: {report['params']}", flush=True)

    t0 = time.perf_counter()
    precisions = ("fp32", "fp16") if args.fp16 else ("fp32",)
    stamps = {}

    def progress(message):  # when each component's export and conversion ended, for per-stage times
        stamps[message] = time.perf_counter() - t0
        print(f"[{stamps[message]:7.1f} s] {message}", flush=True)

    export_sd("sd", str(bundle), base=str(base), force=True, image_check=False, precisions=precisions,
              progress=progress)
    report["export_s"] = round(time.perf_counter() - t0, 1)
    report["precisions"] = list(precisions)
    report["export_log_s"] = {k: round(v, 1) for k, v in stamps.items()}
    report["peak_rss_gib_after_export"] = round(peak_rss_gib(), 2)
    manifest = json.loads((bundle / "gen.json").read_text())
    report["files"] = {c: v["files"] for c, v in manifest["components"].items()}
    report["parity"] = manifest["parity"]

    t0 = time.perf_counter()
    sampler = Sampler(str(bundle), backend="ort", threads=os.cpu_count())
    images = sampler.generate("a photograph of an astronaut riding a horse", steps=1, seed=0)
    report["one_step_s"] = round(time.perf_counter() - t0, 1)
    report["one_step_stage_s"] = {k: round(v, 2) for k, v in sampler.backend.component_seconds.items()}
    report["image_shape"] = list(images.shape)
    if args.fp16:
        t0 = time.perf_counter()
        half = Sampler(str(bundle), backend="ort", precision="fp16", threads=os.cpu_count())
        images16 = half.generate("a photograph of an astronaut riding a horse", steps=1, seed=0)
        report["one_step_fp16_s"] = round(time.perf_counter() - t0, 1)
        report["one_step_fp16_vs_fp32_max_abs"] = float(abs(images16 - images).max())
    report["peak_rss_gib"] = round(peak_rss_gib(), 2)
    write_json(args.out, report)
    print(json.dumps(report, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
