"""gen (ORT, OpenVINO, its tuned plan) vs diffusers' StableDiffusionPipeline (eager), optimum's
ORTStableDiffusionPipeline and optimum-intel's OVStableDiffusionPipeline, on one random-weight SD model,
same scheduler, steps, size, guidance, latents and threads, in one run.

The model sits between tiny-sd and SD 1.5 (UNet at half SD 1.5's width, SD-sized text encoder width,
VAE at half width) so the UNet dominates at 256x256, as it does for real SD. gen exports it with
`gen export --model sd --base DIR`; optimum runs the very same ONNX files (linked into the folder layout
it loads) from its own venv (.venv-optimum: optimum-onnx pins transformers < 4.58, which the main
environment cannot have; see benchmarks/optimum-constraints.txt). optimum-intel converts the base model
itself (its torch -> OpenVINO export, once per work folder, saved as IR), then each run loads the IR,
reshapes it to the static benchmark shape and compiles it, as its docs advise; from its own venv too
(.venv-optimum-intel: it pins transformers < 5.6 and huggingface-hub < 1.22; benchmarks/optimum_intel_venv.sh).

Contenders: diffusers eager, gen ORT (fp32), optimum ORT, optimum-intel (its default precision here),
gen openvino (fp32; bf16 where the CPU has bf16 instructions, else skipped with the reason), gen plan
(Sampler(bundle) with no backend: the plan `gen tune` writes in setup, recorded in the report), and
with `--int8` gen ORT int8, gen openvino int8 (ORT's QDQ file), int8-bf16 (the same file, its float nodes in
bf16, where the CPU has bf16) and int8-ov (NNCF's), and optimum-intel int8 hybrid (its hybrid quantization,
calibrated on gen's own calibration prompts, as many as `--calibration`).

Each contender runs in its own process (a fresh interpreter, nothing else loaded), in blocks A B C
then C B A, so neither leftover threads nor slow drift of the machine favour one of them. Each process
reports its load, its first call (lazy compiles: gen's OpenVINO backend compiles there; optimum-intel
compiles before it, reported as compile_s) apart from the steady runs, and its peak RSS (VmHWM). The
first block's processes start with an empty gen cache; the second block's find the cache their first
left (gen's OpenVINO model cache), so both first-call figures are reported.
Per-stage times: gen from its backend's per-component timers, diffusers from forward hooks on its
modules, the peers from timers around each component's ORT session run / OpenVINO compiled-model call
(benchmarks/peer_runner.py). Images are compared with gen ORT fp32's by PSNR.

    python benchmarks/sd_peers.py --steps 10 --size 256 --threads 2 --repeats 4
    python benchmarks/sd_peers.py --int8 --out benchmarks/results/sd_peers_int8.json   # + the int8 contenders

With `--int8` the bundle is exported with `gen export --int8 --int8-openvino --int8-min-speedup 0`
(ONNX Runtime's QDQ files and NNCF's OpenVINO IR, calibrated on the script's own prompts, gated on image
PSNR against fp32, the speed rule off so that `gen tune` makes the speed decision) and the report adds gen
ORT int8's UNet-call and end-to-end ratios and gen openvino at int8-ov (NNCF's file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OPTIMUM_PY = REPO / ".venv-optimum" / "bin" / "python"
OPTIMUM_INTEL_PY = REPO / ".venv-optimum-intel" / "bin" / "python"
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
    """gen's Sampler on one backend and precision, or (backend "auto") on this host's plan from `gen tune`."""

    def __init__(self, bundle: Path, threads: int, backend: str = "ort", precision: str | None = "fp32"):
        from gen.runtime.sampler import Sampler

        self.sampler = Sampler(str(bundle), backend=backend, threads=threads, precision=precision)

    def run(self, args, latents):
        b = self.sampler.backend
        b.component_seconds.clear()
        images = self.sampler.generate(PROMPT, steps=args.steps, scheduler="ddim", guidance=args.guidance,
                                       height=args.size, width=args.size, seed=args.seed)
        return images, {k: b.component_seconds.get(k, 0.0) for k in ("text_encoder", "unet", "vae_decoder")}

    def ran(self) -> dict:
        """What really ran: the plan's note, the backend's own account (OpenVINO: each compile and its precision)."""
        return {"plan_note": self.sampler.plan_note, "backend": self.sampler.backend.describe()}


# contender -> (label, backend, precision); "auto" with no precision is Sampler(bundle): this host's plan
GEN = {"gen": ("gen ORT", "ort", "fp32"), "gen-int8": ("gen ORT int8", "ort", "int8"),
       "gen-openvino": ("gen openvino", "openvino", "fp32"), "gen-openvino-bf16": ("gen openvino bf16", "openvino", "bf16"),
       "gen-openvino-int8": ("gen openvino int8", "openvino", "int8"),
       "gen-openvino-int8-bf16": ("gen openvino int8-bf16", "openvino", "int8-bf16"),
       "gen-openvino-int8-ov": ("gen openvino int8-ov", "openvino", "int8-ov"), "gen-plan": ("gen plan", "auto", None)}
# peer -> (label, its venv's python, runner script); each peer loads a model folder prepared in setup
PEERS = {"optimum": ("optimum ORT", OPTIMUM_PY, "optimum_sd_runner.py"),
         "optimum-intel": ("optimum-intel", OPTIMUM_INTEL_PY, "optimum_intel_sd_runner.py"),
         "optimum-intel-int8": ("optimum-intel int8 hybrid", OPTIMUM_INTEL_PY, "optimum_intel_sd_runner.py")}
VENVS = {OPTIMUM_PY: "bash benchmarks/optimum_venv.sh", OPTIMUM_INTEL_PY: "bash benchmarks/optimum_intel_venv.sh"}


def contender_main(args) -> None:
    """One contender in its own process: load, a first call timed apart (it compiles, allocates),
    `--repeats` timed runs; writes JSON + images.

    A process per contender keeps them from disturbing each other: torch's OpenMP threads keep
    spinning for a while after an eager call and would steal the cores from the ORT run that follows.
    """
    from gen.runtime.bench import peak_rss_mib, reset_peak_rss

    reset_peak_rss()
    work = Path(args.work)
    latents = np.load(work / "latents.npy")
    t0 = time.perf_counter()
    if args.contender == "diffusers":
        c = Diffusers(work / "base", args.threads)
    else:
        _, backend, precision = GEN[args.contender]
        c = Gen(work / "bundle", args.threads, backend, precision)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    c.run(args, latents)
    first_call_s = time.perf_counter() - t0
    runs, stages = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        images, stage = c.run(args, latents)
        runs.append(time.perf_counter() - t)
        stages.append(stage)
    np.save(work / f"{args.contender}-images.npy", images)
    peak_mib = peak_rss_mib()  # VmHWM, reset at the contender's start (the parent's peak would leak in)
    ran = c.ran() if isinstance(c, Gen) else {}
    (work / f"{args.contender}.json").write_text(json.dumps({"runs_s": runs, "stages": stages, "peak_rss_mib": peak_mib,
                                                             "load_s": load_s, "first_call_s": first_call_s, **ran},
                                                            default=str))


def run_contender(name: str, args, repeats: int) -> tuple[dict, np.ndarray]:
    """A main-venv contender in a fresh process, with its own gen cache: empty in the first block (a cold
    start: OpenVINO compiles from scratch), the one it left in the second (OpenVINO's model cache serves it)."""
    work = Path(args.work)
    cmd = [sys.executable, __file__, "--contender", name, "--work", str(work), "--repeats", str(repeats),
           "--steps", str(args.steps), "--size", str(args.size), "--guidance", str(args.guidance),
           "--threads", str(args.threads), "--seed", str(args.seed)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "GEN_CACHE_DIR": str(work / "cache" / name)})
    if p.returncode != 0:
        raise SystemExit(f"{name} contender failed:\n{p.stderr[-3000:]}")
    return json.loads((work / f"{name}.json").read_text()), np.load(work / f"{name}-images.npy")


def run_peer(name: str, model: Path, args, repeats: int, *extra: str) -> tuple[dict, np.ndarray | None]:
    """A peer's runner in its own venv on `model`; its images (NHWC in [0, 1]) come back as gen's (NCHW in [-1, 1])."""
    work = Path(args.work)
    _, python, runner = PEERS[name]
    out, images = work / f"{name}-{time.monotonic_ns()}.json", work / f"{name}-images.npy"
    cmd = [str(python), str(REPO / "benchmarks" / runner), "--model", str(model), "--prompt", PROMPT,
           "--steps", str(args.steps), "--height", str(args.size), "--width", str(args.size), "--guidance", str(args.guidance),
           "--scheduler", "ddim", "--threads", str(args.threads), "--repeats", str(repeats),
           "--latents", str(work / "latents.npy"), "--out", str(out), "--images-out", str(images), *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if p.returncode != 0:
        raise SystemExit(f"{name} runner failed:\n{p.stderr[-3000:]}")
    r = json.loads(out.read_text())
    if "--convert-from" in extra:
        return r, None
    r["stages"] = [{k[:-2]: s[k] for k in ("text_encoder_s", "unet_s", "vae_decoder_s")} for s in r["stages"]]
    return r, np.load(images).transpose(0, 3, 1, 2) * 2 - 1


def convert_optimum_intel(name: str, base: Path, args) -> dict:
    """optimum-intel's own conversion of the base model to OpenVINO IR (hybrid int8 for the int8 peer),
    once per work folder: every timed run then loads the saved IR, as its users do after `optimum-cli export`."""
    work = Path(args.work)
    folder, record = work / name, work / f"{name}.convert.json"
    if (folder / "model_index.json").is_file() and record.is_file():
        return json.loads(record.read_text())
    extra = ["--convert-from", str(base)]
    if name.endswith("int8"):
        from gen.export.calibration import CALIBRATION_PROMPTS

        prompts = work / "calibration-prompts.json"  # gen's own calibration prompts, as many as gen's --calibration
        prompts.write_text(json.dumps([CALIBRATION_PROMPTS[i % len(CALIBRATION_PROMPTS)] for i in range(args.calibration)]))
        extra += ["--hybrid-int8", str(prompts)]
    print(f"converting the base model with optimum-intel ({name}) ...", flush=True)
    r, _ = run_peer(name, folder, args, 0, *extra)
    record.write_text(json.dumps(r))
    return r


def openvino_skips(bundle: Path, args) -> dict[str, str]:
    """gen's OpenVINO contenders that cannot run here (no OpenVINO, no bf16 instructions, no int8 file), and why."""
    from gen.runtime.bundle import load_bundle
    from gen.runtime.tune import available, label

    _, skipped = available(load_bundle(str(bundle)), None)
    reasons = {s["contender"]: s["reason"] for s in skipped}
    return {name: reasons[label(GEN[name][1:])] for name in ("gen-openvino", "gen-openvino-bf16", "gen-openvino-int8",
                                                             "gen-openvino-int8-bf16", "gen-openvino-int8-ov")
            if label(GEN[name][1:]) in reasons}


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
    ap.add_argument("--tune-seconds", type=float, default=120.0, help="gen tune's time limit for the plan (its max_seconds)")
    ap.add_argument("--no-nncf", action="store_true",
                    help="with --int8: leave out the NNCF-made contenders (gen's int8-ov, optimum-intel's hybrid int8), "
                         "whose quantization takes tens of minutes on 2 cores")
    ap.add_argument("--setup-only", action="store_true",
                    help="build, export and convert (untimed, long: the int8 exports), then stop; a later run times")
    ap.add_argument("--contender", choices=("diffusers", *GEN), help=argparse.SUPPRESS)  # internal
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.contender:
        return contender_main(args)
    for python, create in VENVS.items():
        if not python.exists():
            raise SystemExit(f"no {python}: create it with `{create}`")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from optimum_layout import write_optimum_layout

    from gen.export.onnx_io import psnr
    from gen.export.sd_export import export_sd
    from gen.fileio import write_json
    from gen.runtime.tune import tune

    work = Path(args.work).absolute()
    args.work = str(work)
    base, bundle, layout = work / "base", work / "bundle", work / "optimum"
    shutil.rmtree(work / "cache", ignore_errors=True)  # the contenders' gen caches: each run starts cold
    os.environ["GEN_CACHE_DIR"] = str(work / "cache" / "setup")  # export's and tune's, kept out of the user's
    t0 = time.perf_counter()
    if not (base / "model_index.json").is_file():
        print("building the random-weight base model ...", flush=True)
        build_base(base, tuple(int(c) for c in args.unet_channels.split(",")))
    has = lambda p: (bundle / "gen.json").is_file() and p in json.loads((bundle / "gen.json").read_text())["components"]["unet"]["files"]
    say = lambda m: print(m, flush=True)
    if not has("fp32"):
        export_sd("sd", str(bundle), base=str(base), force=True, progress=say)
    refused = {}  # int8 precision -> why gen's gate wrote nothing (its contenders are then skipped, with the reason)
    for precision in (("int8",) if args.no_nncf else ("int8", "int8-ov")) if args.int8 else ():  # ORT's QDQ; NNCF's IR
        if has(precision) or (work / f"{precision}.refused.txt").is_file():
            refused.update({precision: (work / f"{precision}.refused.txt").read_text()} if not has(precision) else {})
            continue
        from gen.errors import GenError
        from gen.export.int8_options import Int8Options

        try:  # onto the fp32 bundle, keeping what it has; the speed rule off (benchmarks/plan_digits.sh): the plan decides
            export_sd("sd", str(bundle), base=str(base), force=True, progress=say, precisions=("fp32", precision),
                      int8=Int8Options(calibration=args.calibration, min_speedup=0.0))
        except GenError as e:
            refused[precision] = str(e)
            (work / f"{precision}.refused.txt").write_text(str(e))
            say(f"{precision}: gen's quality gate wrote nothing, so its contenders are skipped: {e}")
    manifest = json.loads((bundle / "gen.json").read_text())
    comps = {c: bundle / manifest["components"][c]["files"]["fp32"]["path"] for c in ("text_encoder", "unet", "vae_decoder")}
    configs = {sub: json.loads((base / sub / "config.json").read_text()) for sub in ("unet", "vae", "text_encoder")}
    write_optimum_layout(comps, bundle / "tokenizer", {**json.loads((base / "scheduler" / "scheduler_config.json").read_text()),
                                                       "_class_name": "DDIMScheduler"},
                         configs["unet"], configs["vae"], configs["text_encoder"], layout)
    peers = ["optimum-intel", "optimum-intel-int8"] if args.int8 and not args.no_nncf else ["optimum-intel"]
    conversions = {PEERS[name][0]: convert_optimum_intel(name, base, args) for name in peers}
    if args.setup_only:
        print(f"set up in {work} ({time.perf_counter() - t0:.0f} s); run again without --setup-only to time", flush=True)
        return
    print("gen tune: this host's plan for the bundle ...", flush=True)
    t1 = time.perf_counter()
    plan = tune(str(bundle), n=1, steps=args.steps, threads=args.threads, max_seconds=args.tune_seconds,
                log=lambda m: print(m, flush=True))
    tune_s = time.perf_counter() - t1
    setup_s = time.perf_counter() - t0

    latents = np.random.default_rng(args.seed).standard_normal((1, 4, args.size // 8, args.size // 8), dtype=np.float32)
    np.save(work / "latents.npy", latents)
    half = max(1, args.repeats // 2)
    skipped = openvino_skips(bundle, args)
    order = ["diffusers", "gen", "optimum", "optimum-intel", "gen-openvino", "gen-openvino-bf16", "gen-plan"]
    if args.int8:
        order += ["gen-int8", "gen-openvino-int8", "gen-openvino-int8-bf16"] + ([] if args.no_nncf else ["gen-openvino-int8-ov", "optimum-intel-int8"])
        if args.no_nncf:
            skipped.pop("gen-openvino-int8-ov", None)
        skipped.update({name: f"gen export --int8 refused: {refused[p]}" for name, p in
                        (("gen-int8", "int8"), ("gen-openvino-int8", "int8"), ("gen-openvino-int8-bf16", "int8"),
                         ("gen-openvino-int8-ov", "int8-ov"))
                        if p in refused})
    else:
        for name in ("gen-openvino-int8", "gen-openvino-int8-bf16", "gen-openvino-int8-ov"):
            skipped.pop(name, None)
    order = [name for name in order if name not in skipped]
    names = {name: ("diffusers eager" if name == "diffusers" else PEERS[name][0] if name in PEERS else GEN[name][0])
             for name in order}
    results = {label: {"runs_s": [], "stages": [], "peak_rss_mib": [], "first_call_s": [], "load_s": [], "ran": None}
               for label in names.values()}
    images = {}
    for block in (order, order[::-1]):
        for name in block:
            label = names[name]
            if name in PEERS:
                r, img = run_peer(name, layout if name == "optimum" else work / name, args, half)
            else:
                r, img = run_contender(name, args, half)
            for key in ("runs_s", "stages"):
                results[label][key] += r[key]
            for key in ("peak_rss_mib", "first_call_s", "load_s"):
                results[label][key].append(r.get(key))
            results[label]["ran"] = r.get("openvino") or r.get("backend")
            if "compile_s" in r:
                results[label].setdefault("compile_s", []).append(r["compile_s"])
            images[label] = img
            print(f"{label}: first call {r.get('first_call_s', 0):.3f} s, runs {[round(x, 3) for x in r['runs_s']]}", flush=True)
    summary = {}
    for name, r in results.items():
        summary[name] = {"median_s": statistics.median(r["runs_s"]),
                         "stage_median_s": {k: statistics.median(s[k] for s in r["stages"]) for k in r["stages"][0]},
                         "runs_s": r["runs_s"], "peak_rss_mib": max((m for m in r["peak_rss_mib"] if m), default=None),
                         "first_call_s": {"cold": r["first_call_s"][0], "second_process": r["first_call_s"][1]},
                         "load_s": {"cold": r["load_s"][0], "second_process": r["load_s"][1]},
                         **({"compile_s": dict(zip(("cold", "second_process"), r["compile_s"]))} if "compile_s" in r else {}),
                         "psnr_db_vs_gen_fp32": _db(psnr(images["gen ORT"], images[name])),
                         "ran": r["ran"]}
    med = {name: s["median_s"] for name, s in summary.items()}
    g, p = med["gen ORT"], med["gen plan"]
    intel = {name: m for name, m in med.items() if name.startswith("optimum-intel")}
    speedup = {"gen_vs_diffusers": med["diffusers eager"] / g, "gen_vs_optimum": med["optimum ORT"] / g,
               "gen_plan_vs_diffusers": med["diffusers eager"] / p, "gen_plan_vs_optimum": med["optimum ORT"] / p,
               "gen_plan_vs_optimum_intel_best": {"ratio": min(intel.values()) / p, "best": min(intel, key=intel.get)}}
    if "gen openvino" in med:
        speedup["gen_openvino_vs_optimum_intel"] = med["optimum-intel"] / med["gen openvino"]
    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "platform": platform.platform()},
        "setup": {"steps": args.steps, "size": args.size, "guidance": args.guidance, "scheduler": "ddim",
                  "threads": args.threads, "batch": 1, "cfg_batch": 2, "prompt": PROMPT, "repeats": 2 * half,
                  "unet_channels": args.unet_channels, "params": _params(base), "setup_s": round(setup_s, 1),
                  "order": [names[n] for n in order], "blocks": "the order, then reversed; one fresh process per contender and block",
                  "first_call": "first_call_s/load_s 'cold': the first block's process (empty gen cache; OpenVINO compiles "
                                "from scratch), 'second_process': the second block's, which finds the gen cache the first "
                                "left (gen's OpenVINO model cache; optimum-intel keeps none on a CPU and compiles again)"},
        "results": summary,
        "skipped": {GEN[n][0]: reason for n, reason in skipped.items()},
        "speedup": speedup,
        "image_max_abs_diff": {"gen_vs_diffusers": float(np.abs(images["gen ORT"] - images["diffusers eager"]).max()),
                               "gen_vs_optimum": float(np.abs(images["gen ORT"] - images["optimum ORT"]).max())},
        "plan": {**{k: plan.get(k) for k in ("components", "winner", "verdict", "quality_psnr_db", "skipped", "settings",
                                             "load", "path")}, "tune_s": round(tune_s, 1)},
        "optimum_intel_conversion": conversions,
        "versions": manifest["versions"],
    }
    if refused:
        report["int8_refused"] = refused
    if args.int8 and "gen ORT int8" in summary:
        q, f = summary["gen ORT int8"], summary["gen ORT"]
        report["int8"] = {
            "unet_call_speedup_vs_fp32": f["stage_median_s"]["unet"] / q["stage_median_s"]["unet"],
            "end_to_end_speedup_vs_gen_fp32": f["median_s"] / q["median_s"],
            "end_to_end_speedup_vs_optimum_fp32": summary["optimum ORT"]["median_s"] / q["median_s"],
            "image_psnr_db_vs_gen_fp32": _db(psnr(images["gen ORT"], images["gen ORT int8"])),
            "peak_rss_mib": {"gen fp32": f["peak_rss_mib"], "gen int8": q["peak_rss_mib"]},
            "export_record": {k: manifest["parity"].get(k) for k in ("unet", "text_encoder", "vae_decoder", "images_int8_vs_fp32")},
        }
    write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("speedup", "image_max_abs_diff", "int8") if k in report}, indent=1, default=str))
    for name, s in summary.items():
        print(f"{name:16s} {s['median_s']:7.3f} s  " + "  ".join(f"{k} {v:.3f}" for k, v in s["stage_median_s"].items()))


def _db(value: float) -> float | None:
    """A PSNR for JSON: identical images give inf, which strict JSON cannot hold."""
    return round(value, 2) if np.isfinite(value) else None


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
