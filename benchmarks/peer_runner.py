"""What the peer runners (optimum ORT, optimum-intel OpenVINO) share: arguments, scheduler, stage timers,
the timing loop and the result file.

Each peer runs in its own venv (.venv-optimum, .venv-optimum-intel), whose diffusers/transformers differ
from the main venv's, so this module imports only numpy at the top (diffusers lazily) and gen's light,
torch-free `gen.runtime.bench` for the peak RSS (the repository root is put on sys.path for that).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for the hub
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # gen.runtime.bench (numpy-only) for peak RSS

import numpy as np  # noqa: E402

from gen.runtime.bench import peak_rss_mib, reset_peak_rss  # noqa: E402

STAGES = ("text_encoder", "unet", "vae_decoder")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", required=True, help="the pipeline folder to load")
    p.add_argument("--prompt", default="a photograph of an astronaut riding a horse")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--scheduler", choices=("ddim", "euler", "dpm++"), default="ddim")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latents", help="initial latents .npy, float32 [1, C, H/f, W/f] (unscaled N(0,1) noise)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for the latents when --latents is not given")
    p.add_argument("--out", help="JSON results")
    p.add_argument("--images-out", help="write the last run's images (output_type='np', [N,H,W,3] in [0,1]) here")
    return p


def set_scheduler(pipe, name: str) -> None:
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    cls, extra = {"ddim": (DDIMScheduler, {}), "euler": (EulerDiscreteScheduler, {}),
                  "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"})}[name]
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **extra)
    pipe.set_progress_bar_config(disable=True)


def add_stage_timers(calls: dict[str, tuple[object, str]]) -> dict:
    """Wrap each stage's inference call `getattr(obj, attr)` (an instance attribute shadows the method);
    returns the dict the wrappers add seconds and call counts into."""
    acc = {name: {"s": 0.0, "calls": 0} for name in calls}
    for name, (obj, attr) in calls.items():
        def timed(*args, _run=getattr(obj, attr), _acc=acc[name], **kwargs):
            t0 = time.perf_counter()
            try:
                return _run(*args, **kwargs)
            finally:
                _acc["s"] += time.perf_counter() - t0
                _acc["calls"] += 1

        setattr(obj, attr, timed)
    return acc


def generator(pipe, a):
    """The pipeline call every run makes: the given latents (or a seeded generator), images as numpy."""
    import torch

    latents = torch.from_numpy(np.load(a.latents).astype(np.float32)) if a.latents else None

    def generate():
        gen = None if latents is not None else torch.Generator().manual_seed(a.seed)
        return pipe(a.prompt, negative_prompt=a.negative_prompt, num_inference_steps=a.steps, height=a.height,
                    width=a.width, guidance_scale=a.guidance, latents=latents, generator=gen, output_type="np").images
    return generate


def measure(generate, acc: dict, repeats: int) -> tuple[dict, np.ndarray]:
    """The first call timed on its own (it pays lazy compiles, allocations), then `repeats` timed runs."""
    t0 = time.perf_counter()
    generate()
    first = time.perf_counter() - t0
    runs, stages = [], []
    for _ in range(repeats):
        for v in acc.values():
            v.update(s=0.0, calls=0)
        t0 = time.perf_counter()
        images = generate()
        total = time.perf_counter() - t0
        runs.append(total)
        stage = {f"{k}_s": v["s"] for k, v in acc.items()}
        stage["other_s"] = total - sum(stage.values())
        stage["calls"] = {k: v["calls"] for k, v in acc.items()}
        stages.append(stage)
    return {"first_call_s": first, "runs_s": runs, "median_s": statistics.median(runs), "stages": stages,
            "stage_medians_s": {k: statistics.median(s[k] for s in stages) for k in [f"{n}_s" for n in acc] + ["other_s"]}}, images


def finish(a, result: dict, images: np.ndarray | None, packages: tuple[str, ...]) -> None:
    """Add peak RSS (VmHWM since `start()`) and package versions; write the JSON and the images."""
    from importlib.metadata import version

    if a.images_out and images is not None:
        np.save(a.images_out, images)
    result = {**result, "args": vars(a), "peak_rss_mib": peak_rss_mib(), "versions": {d: version(d) for d in packages}}
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: result[k] for k in ("median_s", "first_call_s", "peak_rss_mib") if k in result}))


def start() -> None:
    """Restart the peak-RSS mark: the interpreter's imports are the baseline every contender pays."""
    reset_peak_rss()
