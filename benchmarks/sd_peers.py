"""gen's ORT Sampler vs diffusers' StableDiffusionPipeline (eager) vs optimum's ORTStableDiffusionPipeline,
on one random-weight SD model, same scheduler, steps, size, latents and threads, in one run.

The model sits between tiny-sd and SD 1.5 (UNet at half SD 1.5's width, SD-sized text encoder width,
VAE at half width) so the UNet dominates at 256x256, as it does for real SD. gen exports it with
`gen export --model sd --base DIR`; optimum runs the very same ONNX files (linked into the folder layout
it loads) from its own venv (.venv-optimum: optimum-onnx pins transformers < 4.58, which the main
environment cannot have; see benchmarks/optimum-constraints.txt).

Each contender runs in its own process (a fresh interpreter, nothing else loaded), in blocks A B C
then C B A, so neither leftover threads nor slow drift of the machine favour one of them.
Per-stage times: gen from its backend's per-component timers, diffusers from forward hooks on its
modules, optimum from timers around each ORT session's run (benchmarks/optimum_sd_runner.py).

    python benchmarks/sd_peers.py --steps 10 --size 256 --threads 2 --repeats 4
    python benchmarks/sd_peers.py --int8 --out benchmarks/results/sd_peers_int8.json   # + gen's int8 bundle

With `--int8` the bundle is exported with `gen export --int8` (calibrated on the script's own prompts,
gated against fp32) and a fourth contender, gen ORT at precision int8, joins the blocks; the report
adds its UNet-call and end-to-end ratios, its image PSNR against gen fp32 from the same latents, and
every contender's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OPTIMUM_PY = REPO / ".venv-optimum" / "bin" / "python"
PROMPT = "a photograph of an astronaut riding a horse"


def build_base(folder: Path, unet_channels: tuple, seed: int = 0) -> None:
    """A random-weight SD pipeline saved in diffusers format (what `--base DIR` loads)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from gen.recipes.clip_vocab import MAX_LENGTH, vocabulary, write_tokenizer_files
    from gen.recipes.tiny_sd import SCHEDULER_CONFIG

    vocab = vocabulary()
    tokenizer = CLIPTokenizer.from_pretrained(str(write_tokenizer_files(folder / "_tok")))
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=768, intermediate_size=3072, num_hidden_layers=6, num_attention_heads=12,
        max_position_embeddings=MAX_LENGTH, bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"]))
    unet = UNet2DConditionModel(sample_size=32, block_out_channels=unet_channels, layers_per_block=2,
                                cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=(64, 128, 256, 256), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=256)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDIMScheduler.from_config(SCHEDULER_CONFIG), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)


class Diffusers:
    """diffusers eager with forward hooks timing each stage."""

    name = "diffusers eager"

    def __init__(self, base: Path, threads: int):
        import torch
        from diffusers import DDIMScheduler, StableDiffusionPipeline

        torch.set_num_threads(threads)
        self.torch = torch
        self.pipe = StableDiffusionPipeline.from_pretrained(str(base), safety_checker=None, requires_safety_checker=False,
                                                            local_files_only=True)
        self.pipe.scheduler = DDIMScheduler.from_config(self.pipe.scheduler.config)
        self.pipe.set_progress_bar_config(disable=True)
        self.stages = {"text_encoder": 0.0, "unet": 0.0, "vae_decoder": 0.0}
        self._hook(self.pipe.text_encoder, "text_encoder")
        self._hook(self.pipe.unet, "unet")
        self._hook(self.pipe.vae.decoder, "vae_decoder")

    def _hook(self, module, stage):
        start = {}
        module.register_forward_pre_hook(lambda *_: start.__setitem__("t", time.perf_counter()))
        module.register_forward_hook(lambda *_: self.stages.__setitem__(stage, self.stages[stage] + time.perf_counter() - start["t"]))

    def run(self, args, latents):
        for k in self.stages:
            self.stages[k] = 0.0
        with self.torch.inference_mode():
            out = self.pipe(PROMPT, num_inference_steps=args.steps, height=args.size, width=args.size,
                            guidance_scale=args.guidance, latents=self.torch.from_numpy(latents), output_type="np").images
        return out.transpose(0, 3, 1, 2) * 2 - 1, dict(self.stages)


class Gen:
    name = "gen ORT"

    def __init__(self, bundle: Path, threads: int, precision: str = "fp32"):
        from gen.runtime.sampler import Sampler

        self.sampler = Sampler(str(bundle), backend="ort", threads=threads, precision=precision)

    def run(self, args, latents):
        b = self.sampler.backend
        b.component_seconds.clear()
        images = self.sampler.generate(PROMPT, steps=args.steps, scheduler="ddim", guidance=args.guidance,
                                       height=args.size, width=args.size, seed=args.seed)
        return images, {k: b.component_seconds.get(k, 0.0) for k in ("text_encoder", "unet", "vae_decoder")}


def contender_main(args) -> None:
    """One contender in its own process: load, warm up, time `--repeats` runs, write JSON + images.

    A process per contender keeps them from disturbing each other: torch's OpenMP threads keep
    spinning for a while after an eager call and would steal the cores from the ORT run that follows.
    """
    from gen.runtime.bench import reset_peak_rss

    reset_peak_rss()
    work = Path(args.work)
    latents = np.load(work / "latents.npy")
    if args.contender == "diffusers":
        c = Diffusers(work / "base", args.threads)
    else:
        c = Gen(work / "bundle", args.threads, "int8" if args.contender == "gen-int8" else "fp32")
    c.run(args, latents)  # warm-up
    runs, stages = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        images, stage = c.run(args, latents)
        runs.append(time.perf_counter() - t)
        stages.append(stage)
    np.save(work / f"{args.contender}-images.npy", images)
    from gen.runtime.bench import peak_rss_mib

    peak_mib = peak_rss_mib()  # VmHWM, reset at the contender's start (the parent's peak would leak in)
    (work / f"{args.contender}.json").write_text(json.dumps({"runs_s": runs, "stages": stages, "peak_rss_mib": peak_mib}))


def run_contender(name: str, args, repeats: int) -> tuple[dict, np.ndarray]:
    work = Path(args.work)
    cmd = [sys.executable, __file__, "--contender", name, "--work", str(work), "--repeats", str(repeats),
           "--steps", str(args.steps), "--size", str(args.size), "--guidance", str(args.guidance),
           "--threads", str(args.threads), "--seed", str(args.seed)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{name} contender failed:\n{p.stderr[-3000:]}")
    return json.loads((work / f"{name}.json").read_text()), np.load(work / f"{name}-images.npy")


def run_optimum(layout: Path, args, latents_file: Path, repeats: int, work: Path) -> dict:
    out = work / f"optimum-{time.monotonic_ns()}.json"
    cmd = [str(OPTIMUM_PY), str(REPO / "benchmarks" / "optimum_sd_runner.py"), "--model", str(layout), "--prompt", PROMPT,
           "--steps", str(args.steps), "--height", str(args.size), "--width", str(args.size), "--guidance", str(args.guidance),
           "--scheduler", "ddim", "--threads", str(args.threads), "--repeats", str(repeats), "--latents", str(latents_file),
           "--out", str(out), "--images-out", str(work / "optimum-images.npy")]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if p.returncode != 0:
        raise SystemExit(f"optimum runner failed:\n{p.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=4, help="timed runs per contender (split over two blocks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unet-channels", default="160,320,640,640",
                    help="UNet block widths (SD 1.5: 320,640,1280,1280); the default is half SD 1.5")
    ap.add_argument("--work", default=str(REPO / "build" / "sd-peers"), help="model, bundle and scratch files")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sd_peers.json"))
    ap.add_argument("--int8", action="store_true", help="also export int8 (gen export --int8) and time gen at int8")
    ap.add_argument("--calibration", type=int, default=16, help="with --int8: prompts (images) to calibrate on")
    ap.add_argument("--contender", choices=("diffusers", "gen", "gen-int8"), help=argparse.SUPPRESS)  # internal
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.contender:
        return contender_main(args)
    if not OPTIMUM_PY.exists():
        raise SystemExit(f"no {OPTIMUM_PY}: create it with the commands in benchmarks/optimum-constraints.txt")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from optimum_layout import write_optimum_layout

    from gen.export.sd_export import export_sd
    from gen.fileio import write_json

    work = Path(args.work)
    base, bundle, layout = work / "base", work / "bundle", work / "optimum"
    t0 = time.perf_counter()
    if not (base / "model_index.json").is_file():
        print("building the random-weight base model ...", flush=True)
        build_base(base, tuple(int(c) for c in args.unet_channels.split(",")))
    has = lambda p: (bundle / "gen.json").is_file() and p in json.loads((bundle / "gen.json").read_text())["components"]["unet"]["files"]
    if not has("fp32") or (args.int8 and not has("int8")):
        from gen.export.int8_options import Int8Options

        export_sd("sd", str(bundle), base=str(base), force=True, progress=lambda m: print(m, flush=True),
                  precisions=("fp32", "int8") if args.int8 else ("fp32",), int8=Int8Options(calibration=args.calibration))
    setup_s = time.perf_counter() - t0
    manifest = json.loads((bundle / "gen.json").read_text())
    comps = {c: bundle / manifest["components"][c]["files"]["fp32"]["path"] for c in ("text_encoder", "unet", "vae_decoder")}
    configs = {sub: json.loads((base / sub / "config.json").read_text()) for sub in ("unet", "vae", "text_encoder")}
    write_optimum_layout(comps, bundle / "tokenizer", {**json.loads((base / "scheduler" / "scheduler_config.json").read_text()),
                                                       "_class_name": "DDIMScheduler"},
                         configs["unet"], configs["vae"], configs["text_encoder"], layout)

    latents = np.random.default_rng(args.seed).standard_normal((1, 4, args.size // 8, args.size // 8), dtype=np.float32)
    latents_file = work / "latents.npy"
    np.save(latents_file, latents)
    half = max(1, args.repeats // 2)
    names = {"diffusers": "diffusers eager", "gen": "gen ORT", "optimum": "optimum ORT"}
    if args.int8:
        names["gen-int8"] = "gen ORT int8"
    results = {label: {"runs_s": [], "stages": [], "peak_rss_mib": []} for label in names.values()}
    images = {}
    order = list(names)
    for block in (order, order[::-1]):
        for name in block:
            label = names[name]
            if name == "optimum":
                r = run_optimum(layout, args, latents_file, half, work)
                stages = [{k[:-2]: s[k] for k in ("text_encoder_s", "unet_s", "vae_decoder_s")} for s in r["stages"]]
                img = np.load(work / "optimum-images.npy").transpose(0, 3, 1, 2) * 2 - 1
            else:
                r, img = run_contender(name, args, half)
                stages = r["stages"]
            results[label]["runs_s"] += r["runs_s"]
            results[label]["peak_rss_mib"].append(r.get("peak_rss_mib"))
            results[label]["stages"] += stages
            images[label] = img
            print(f"{label}: {[round(x, 3) for x in r['runs_s']]}", flush=True)
    summary = {}
    for name, r in results.items():
        summary[name] = {"median_s": statistics.median(r["runs_s"]),
                         "stage_median_s": {k: statistics.median(s[k] for s in r["stages"]) for k in r["stages"][0]},
                         "runs_s": r["runs_s"], "peak_rss_mib": max((m for m in r["peak_rss_mib"] if m), default=None)}
    g = summary["gen ORT"]["median_s"]
    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "platform": platform.platform()},
        "setup": {"steps": args.steps, "size": args.size, "guidance": args.guidance, "scheduler": "ddim",
                  "threads": args.threads, "batch": 1, "cfg_batch": 2, "prompt": PROMPT, "repeats": 2 * half,
                  "unet_channels": args.unet_channels, "params": _params(base), "setup_s": round(setup_s, 1)},
        "results": summary,
        "speedup": {"gen_vs_diffusers": summary["diffusers eager"]["median_s"] / g,
                    "gen_vs_optimum": summary["optimum ORT"]["median_s"] / g},
        "image_max_abs_diff": {"gen_vs_diffusers": float(np.abs(images["gen ORT"] - images["diffusers eager"]).max()),
                               "gen_vs_optimum": float(np.abs(images["gen ORT"] - images["optimum ORT"]).max())},
        "versions": manifest["versions"],
    }
    if args.int8:
        from gen.export.onnx_io import psnr

        q, f = summary["gen ORT int8"], summary["gen ORT"]
        report["int8"] = {
            "unet_call_speedup_vs_fp32": f["stage_median_s"]["unet"] / q["stage_median_s"]["unet"],
            "end_to_end_speedup_vs_gen_fp32": f["median_s"] / q["median_s"],
            "end_to_end_speedup_vs_optimum_fp32": summary["optimum ORT"]["median_s"] / q["median_s"],
            "image_psnr_db_vs_gen_fp32": psnr(images["gen ORT"], images["gen ORT int8"]),
            "peak_rss_mib": {"gen fp32": f["peak_rss_mib"], "gen int8": q["peak_rss_mib"]},
            "export_record": {k: manifest["parity"].get(k) for k in ("unet", "text_encoder", "vae_decoder", "images_int8_vs_fp32")},
        }
    write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("speedup", "image_max_abs_diff", "int8") if k in report}, indent=1, default=str))
    for name, s in summary.items():
        print(f"{name:16s} {s['median_s']:7.3f} s  " + "  ".join(f"{k} {v:.3f}" for k, v in s["stage_median_s"].items()))


def _params(base: Path) -> dict:
    from safetensors import safe_open

    out = {}
    for sub in ("text_encoder", "unet", "vae"):
        n = 0
        for f in (base / sub).glob("*.safetensors"):
            with safe_open(str(f), "np") as st:
                n += sum(int(np.prod(st.get_slice(k).get_shape())) for k in st.keys())
        out[sub] = n
    return out


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
