"""One prepared GPU check: every GPU path this host can run, parity against CPU fp32, and times.

    bash benchmarks/gpu_check.sh OUTDIR            # on a GPU host, under 8 minutes
    python benchmarks/gpu_check.py OUTDIR --dry-run  # the same logic on this CPU, tiny sizes

Writes OUTDIR/gpu_check.json (and prints a table). Each path runs in turn, never two at once; a path
that fails is recorded with its error and the rest go on. Times are medians of repeats after a
warm-up; every timed call ends with its result on the host (gen's Sampler returns numpy; the
diffusers calls synchronise), so they are CUDA-synchronised.

1. The default DDPM bundle (`bundles/ddpm`, the README's main job exported) through gen's Sampler:
   eager fp32 / fp16, compile (torch.compile, CUDA graphs via reduce-overhead), ORT's CUDA provider
   fp32 / fp16 where this host's onnxruntime has it (eager and ORT fp16 also with the loop stepped on
   the host, to measure the device-resident loops), and the trt backend where TensorRT is installed; n = 16, 50 DDIM steps; parity with the CPU ORT fp32 images of the same seed.
2. gen's SD path: the SD model of benchmarks/sd_peers.py (random weights: UNet 160-320-640-640,
   6-layer text encoder) exported to a bundle, then Sampler.generate at 512x512, 20 DDIM steps with
   guidance 7.5, end to end, on eager fp32 / fp16, compile fp16, ORT fp16 (eager and ORT fp16 with
   and without the device-resident loop) and trt; parity against eager fp32 on the GPU.
3. The same model at 512x512 through diffusers: one UNet call at batch 2 (guidance) in eager fp32, eager
   fp16 and compiled fp16; end to end, 20 DDIM steps with guidance 7.5, fp16 eager and fp16 with the
   compiled UNet. Parity: the fp16 and compiled UNet outputs against CUDA fp32, and CUDA fp32 against
   one CPU fp32 call.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--ddpm", default="bundles/ddpm")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check the script, not the GPU")
    p.add_argument("--budget-s", type=float, default=420, help="skip what is left after this many seconds")
    p.add_argument("--work", default="build/gpu-check", help="the SD base and bundle (GBs: kept out of OUT, "
                                                             "whose files are fetched back)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    device = "cpu" if args.dry_run else "cuda"
    result = {"command": "python benchmarks/gpu_check.py " + " ".join(argv or sys.argv[1:]), "facts": facts(),
              "device": device, "ddpm_bundle": args.ddpm, "ddpm": {}, "gen_sd": {}, "sd": {}}

    def left() -> bool:
        return time.perf_counter() - t0 < args.budget_s

    def save() -> None:
        """Written after every row, so a run killed at its time limit still brings back what it measured."""
        result["seconds"] = round(time.perf_counter() - t0, 1)
        (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")

    stages = (("ddpm", lambda: ddpm_paths(args.ddpm, device, args.dry_run, left, result["ddpm"], save)),
              ("gen_sd", lambda: gen_sd_paths(Path(args.work), device, args.dry_run, left, result["gen_sd"], save)),
              ("sd", lambda: sd_paths(Path(args.work), device, args.dry_run, left, result["sd"], save)))
    for key, stage in stages:
        if key == "ddpm" or left():
            try:
                stage()
            except Exception:
                result[key]["error"] = traceback.format_exc(limit=3)
        save()
    print(summary(result))
    return 0


def facts() -> dict:
    import torch

    f = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
         "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        f.update(gpu=torch.cuda.get_device_name(), compute_capability=".".join(map(str, torch.cuda.get_device_capability())))
    try:
        import onnxruntime

        f.update(onnxruntime=onnxruntime.__version__, ort_providers=onnxruntime.get_available_providers())
    except ImportError:
        f["onnxruntime"] = None
    try:
        import tensorrt

        f["tensorrt"] = tensorrt.__version__
    except ImportError:
        f["tensorrt"] = None
    return f


def timed(fn, warmup: int, repeats: int) -> tuple[float, object]:
    """Median milliseconds of `fn()` after `warmup` calls; and its last result."""
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 3), out


def ddpm_paths(bundle: str, device: str, dry: bool, left, into: dict, save) -> None:
    from gen.runtime.sampler import Sampler

    kw = {"n": 4 if dry else 16, "steps": 5 if dry else 50, "scheduler": "ddim", "seed": 0}
    rows = {}
    into.update(arguments=kw, paths=rows)
    reference = Sampler(bundle, backend="ort", precision="fp32").generate(**kw)
    # "host loop": the denoising loop stepped on the host (resident_loop off), beside the device-resident
    # loop of the row before it; trt is recorded as an error where TensorRT is absent
    # compile last: its first calls compile for a minute or more, and the budget may end there
    paths = [("eager", "fp32", ""), ("eager", "fp16", ""), ("eager", "fp16", "host loop"), ("ort", "fp32", ""),
             ("ort", "fp16", ""), ("ort", "fp16", "host loop"), ("trt", "fp32", ""), ("trt", "fp16", ""),
             ("compile", "fp16", ""), ("compile", "fp32", "")]
    for backend, precision, variant in paths:
        name = " ".join(filter(None, (backend, device, precision, variant)))
        if not left():
            rows[name] = {"skipped": "time budget"}
            continue
        try:
            s = Sampler(bundle, backend=backend, device=device, precision=precision)
            if variant:
                s.backend.resident_loop = False
            ms, images = timed(lambda: s.generate(**kw), 2, 3 if dry else 10)
            rows[name] = {"ms": ms, "ms_per_step": round(ms / kw["steps"], 3),
                          "max_abs_vs_cpu_fp32": float(np.abs(images - reference).max()),
                          "describe": {k: v for k, v in s.backend.describe().items() if isinstance(v, (str, int, float, dict))}}
            s.close()
        except Exception as e:
            rows[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        print(name, json.dumps(rows[name])[:300], flush=True)
        save()


def sd_paths(work: Path, device: str, dry: bool, left, into: dict, save) -> None:
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from benchmarks.sd_peers import build_base

    base = work / "sd-peers-base"
    channels = (32, 64, 64, 64) if dry else (160, 320, 640, 640)
    if not (base / "model_index.json").is_file():
        build_base(base, channels)
    size = 64 if dry else 512
    latent = size // 8
    pipe = StableDiffusionPipeline.from_pretrained(str(base), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, latent, latent, generator=g)
    t = torch.tensor([500, 500])
    text = torch.randn(2, 77, pipe.text_encoder.config.hidden_size, generator=g)
    rows = {}
    into.update(size=size, unet_channels=list(channels), paths=rows)
    with torch.inference_mode():
        cpu_out = pipe.unet.float()(x, t, text).sample  # the CPU fp32 reference, one call
    unet32 = pipe.unet.to(device, torch.float32)

    def call(unet, dtype):
        def run():
            with torch.inference_mode():
                out = unet(x.to(device, dtype), t.to(device), text.to(device, dtype)).sample
                return out.float().cpu()
        return run

    reps = 3 if dry else 20
    ms, ref = timed(call(unet32, torch.float32), 2, reps)
    rows["unet eager fp32"] = {"ms": ms, "max_abs_vs_cpu_fp32": float((ref - cpu_out).abs().max())}
    save()
    unet16 = pipe.unet.to(device, torch.float16) if device == "cuda" else None
    if unet16 is not None and left():
        ms, out = timed(call(unet16, torch.float16), 2, reps)
        rows["unet eager fp16"] = {"ms": ms, "max_abs_vs_fp32": float((out - ref).abs().max())}
        try:
            compiled = torch.compile(unet16, mode="reduce-overhead", dynamic=False)
            tc = time.perf_counter()
            call(compiled, torch.float16)()
            compile_s = time.perf_counter() - tc
            ms, out = timed(call(compiled, torch.float16), 3, reps)
            rows["unet compile fp16"] = {"ms": ms, "compile_s": round(compile_s, 1), "max_abs_vs_fp32": float((out - ref).abs().max())}
        except Exception as e:
            rows["unet compile fp16"] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        save()
        for name in ("unet eager fp16", "unet compile fp16"):
            if "ms" in rows.get(name, {}):
                rows[name]["speedup_vs_eager_fp32"] = round(rows["unet eager fp32"]["ms"] / rows[name]["ms"], 2)
    if device == "cuda" and left():
        pipe = pipe.to("cuda", torch.float16)

        def end_to_end():
            return pipe("a red house by a lake", num_inference_steps=20, guidance_scale=7.5, height=size, width=size,
                        generator=torch.Generator("cuda").manual_seed(0), output_type="np").images

        ms, _ = timed(end_to_end, 1, 5)
        rows["end to end fp16 eager, 20 steps, guidance"] = {"ms": ms}
        save()
        if "ms" in rows.get("unet compile fp16", {}):
            pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", dynamic=False)
            ms, _ = timed(end_to_end, 2, 5)
            rows["end to end fp16 compiled UNet, 20 steps, guidance"] = {"ms": ms}
    for k, v in rows.items():
        print(k, json.dumps(v), flush=True)


def gen_sd_paths(work: Path, device: str, dry: bool, left, into: dict, save) -> None:
    """gen's own SD path on the sd_peers model: the base exported to a bundle (fp32 + fp16), then
    `Sampler.generate` end to end (text encoder, 20 DDIM steps with guidance 7.5, VAE decoder) on each
    backend; parity against eager fp32 on the same device. The issue's targets read off these rows:
    ORT or compile fp16 against eager fp32, and the end-to-end time."""
    from benchmarks.sd_peers import build_base
    from gen.export.sd_export import export_sd
    from gen.runtime.sampler import Sampler

    base, bundle = work / "sd-peers-base", work / "sd-peers-bundle"
    if not (base / "model_index.json").is_file():
        build_base(base, (32, 64, 64, 64) if dry else (160, 320, 640, 640))
    t = time.perf_counter()
    if not (bundle / "gen.json").is_file():
        export_sd("sd", str(bundle), base=str(base), precisions=("fp32", "fp16"), image_check=False,
                  progress=lambda *_: None)
    into["export_s"] = round(time.perf_counter() - t, 1)
    size = 64 if dry else 512
    kw = {"prompt": "a red house by a lake", "steps": 20, "guidance": 7.5, "scheduler": "ddim", "height": size,
          "width": size, "seed": 0}
    half = "fp32" if dry else "fp16"  # the CPU's eager and compile backends run fp32 only
    # compile last but trt: its first calls compile for minutes, and the budget may end there
    paths = dict.fromkeys([("eager", "fp32", ""), ("eager", half, ""), ("eager", half, "host loop"), ("ort", half, ""),
                           ("ort", half, "host loop"), ("compile", half, ""), ("trt", half, "")])
    rows, reference = {}, None
    into.update(arguments=kw, paths=rows)
    for backend, precision, variant in paths:
        name = " ".join(filter(None, (backend, device, precision, variant)))
        if not left():
            rows[name] = {"skipped": "time budget"}
            continue
        s = None
        try:
            s = Sampler(str(bundle), backend=backend, device=device, precision=precision)
            if variant:
                s.backend.resident_loop = False
            s.generate(**kw)  # warm-up (and compilation), outside the UNet's per-call figure
            unet_s, unet_calls = s.backend.component_seconds["unet"], s.backend.component_calls["unet"]
            ms, images = timed(lambda: s.generate(**kw), 0, 2 if dry else 5)
            if (backend, precision, variant) == ("eager", "fp32", ""):
                reference = images
            # on CUDA, eager and compile's resident loop books the whole loop to the UNet (its calls
            # only queue kernels): the UNet figure then includes the step arithmetic
            per_call = (s.backend.component_seconds["unet"] - unet_s) / (s.backend.component_calls["unet"] - unet_calls)
            rows[name] = {"ms": ms, "unet_ms_per_call": round(1000 * per_call, 3)}
            if reference is not None:
                rows[name]["max_abs_vs_eager_fp32"] = float(np.abs(images - reference).max())
        except Exception as e:
            rows[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        finally:
            if s is not None:
                s.close()  # a failed row's models leave the GPU before the next row
        print(name, json.dumps(rows[name])[:300], flush=True)
        save()
    eager = rows.get(f"eager {device} fp32", {}).get("ms")
    for row in rows.values():
        if eager and "ms" in row:
            row["speedup_vs_eager_fp32"] = round(eager / row["ms"], 2)


def summary(result: dict) -> str:
    lines = [f"GPU: {result['facts'].get('gpu', 'none')} | torch {result['facts']['torch']} | "
             f"onnxruntime {result['facts'].get('onnxruntime')} | TensorRT {result['facts'].get('tensorrt')}",
             "| model | path | median ms | parity |", "|---|---|---|---|"]
    for model in ("ddpm", "gen_sd", "sd"):
        for name, row in result.get(model, {}).get("paths", {}).items():
            parity = next((f"{k} {v:.2e}" for k, v in row.items() if k.startswith("max_abs")), "")
            lines.append(f"| {model} | {name} | {row.get('ms', row.get('error', row.get('skipped')))} | {parity} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
