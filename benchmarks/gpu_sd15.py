"""SD 1.5's full-size architecture (random weights) through diffusers on a GPU: the UNet and 512x512
end to end, eager against torch.compile, to set gpu_check.py's smaller SD model beside the issue's
yardstick (stable-fast: about 104 UNet it/s on an H100 for SD 1.5).

    python benchmarks/gpu_sd15.py OUTDIR             # GPU host, about 3 minutes -> OUTDIR/gpu_sd15.json
    python benchmarks/gpu_sd15.py OUTDIR --dry-run   # this CPU, a tiny UNet: checks the script only

Random weights: latency does not depend on them. The pipeline is built in memory from SD 1.5's
configs (UNet 320-640-1280-1280, CLIP ViT-L/14 text encoder, KL-f8 VAE) by benchmarks/sd15_fullsize.py,
which also saves them for its export run. Times are medians after warm-up; each call ends on the host
(`.cpu()` or numpy images), so they are CUDA-synchronised. The JSON is rewritten after every row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_check import facts, timed  # noqa: E402
from benchmarks.sd15_fullsize import sd15_pipeline  # noqa: E402


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.dry_run else "cuda"
    size = 64 if args.dry_run else 512
    t0 = time.perf_counter()
    rows = {}
    result = {"command": "python benchmarks/gpu_sd15.py " + " ".join(argv or sys.argv[1:]), "facts": facts(),
              "model": "SD 1.5 architecture, random weights" + (" (dry run: tiny)" if args.dry_run else ""),
              "size": size, "paths": rows}

    def save(name: str) -> None:
        print(name, json.dumps(rows.get(name)), flush=True)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        (out / "gpu_sd15.json").write_text(json.dumps(result, indent=2) + "\n")

    from diffusers import DDIMScheduler

    from gen.recipes.tiny_sd import SCHEDULER_CONFIG

    pipe = sd15_pipeline(Path("build/gpu-sd15-tok"), tiny=args.dry_run)
    pipe.scheduler = DDIMScheduler.from_config(SCHEDULER_CONFIG)
    pipe.set_progress_bar_config(disable=True)
    result["parameters_millions"] = {k: round(sum(p.numel() for p in getattr(pipe, k).parameters()) / 1e6, 1)
                                     for k in ("text_encoder", "unet", "vae")}
    g = torch.Generator().manual_seed(0)
    latent = size // 8
    x = torch.randn(2, 4, latent, latent, generator=g)  # batch 2: guidance's two halves in one call
    t = torch.tensor([500, 500])
    text = torch.randn(2, 77, 768, generator=g)

    def unet_call(unet, dtype):
        def run():
            with torch.inference_mode():
                return unet(x.to(device, dtype), t.to(device), text.to(device, dtype)).sample.float().cpu()
        return run

    reps = 3 if args.dry_run else 20
    unet = pipe.unet.to(device, torch.float32)
    ms, ref = timed(unet_call(unet, torch.float32), 2, reps)
    rows["unet eager fp32"] = {"ms": ms}
    save("unet eager fp32")
    half = torch.float32 if args.dry_run else torch.float16
    unet = pipe.unet.to(device, half)
    ms, o = timed(unet_call(unet, half), 2, reps)
    rows["unet eager fp16"] = {"ms": ms, "max_abs_vs_fp32": float((o - ref).abs().max())}
    save("unet eager fp16")
    compiled = torch.compile(pipe.unet, mode="reduce-overhead", dynamic=False)
    tc = time.perf_counter()
    unet_call(compiled, half)()
    compile_s = round(time.perf_counter() - tc, 1)
    ms, o = timed(unet_call(compiled, half), 3, reps)
    rows["unet compile fp16"] = {"ms": ms, "compile_s": compile_s, "max_abs_vs_fp32": float((o - ref).abs().max()),
                                 "unet_it_per_s": round(1000 / ms, 1)}
    for name in ("unet eager fp16", "unet compile fp16"):
        rows[name]["speedup_vs_eager_fp32"] = round(rows["unet eager fp32"]["ms"] / rows[name]["ms"], 2)
    save("unet compile fp16")
    pipe = pipe.to(device, half)

    def end_to_end():
        return pipe("a red house by a lake", num_inference_steps=20, guidance_scale=7.5, height=size, width=size,
                    generator=torch.Generator(device).manual_seed(0), output_type="np").images

    ms, _ = timed(end_to_end, 1, 2 if args.dry_run else 5)
    rows["end to end fp16 eager, 20 steps, guidance"] = {"ms": ms}
    save("end to end fp16 eager, 20 steps, guidance")
    pipe.unet = compiled
    ms, _ = timed(end_to_end, 2, 2 if args.dry_run else 5)
    rows["end to end fp16 compiled UNet, 20 steps, guidance"] = {"ms": ms}
    save("end to end fp16 compiled UNet, 20 steps, guidance")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
