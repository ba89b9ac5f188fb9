"""Time optimum's ONNX Runtime Stable Diffusion pipeline on our own exported ONNX files.

Run it with the OPTIMUM venv's python, not the main one:

    .venv-optimum/bin/python benchmarks/optimum_sd_runner.py --model DIR --out result.json ...

Why a separate venv: optimum's ORT pipelines live in `optimum-onnx`, which pins transformers<4.58, and
diffusers>=0.40 needs huggingface_hub>=1.x while transformers 4.57 needs huggingface_hub<1.0; the main venv
has transformers 5 / diffusers 0.42. So this script imports only optimum-side packages and talks to the main
side through files: DIR is a folder made by benchmarks/optimum_layout.py (links to the same .onnx files our
sampler runs), the initial latents come in as .npy and the images go out as .npy. Install the venv with
benchmarks/optimum-constraints.txt.

Timing: one warm-up generation, then --repeats timed ones (time.perf_counter around the pipeline call).
Per-stage times wrap each component's `InferenceSession.run` (pure ONNX Runtime time, summed over calls);
`other_s` is the rest: scheduler math, tokenizer, numpy<->torch copies, image post-processing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for the hub

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler  # noqa: E402
from optimum.onnxruntime import ORTStableDiffusionPipeline  # noqa: E402

SCHEDULERS = {"ddim": (DDIMScheduler, {}), "euler": (EulerDiscreteScheduler, {}),
              "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"})}
STAGES = ("text_encoder", "unet", "vae_decoder")


def load(model: str, threads: int, scheduler: str) -> ORTStableDiffusionPipeline:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    pipe = ORTStableDiffusionPipeline.from_pretrained(model, export=False, provider="CPUExecutionProvider",
                                                      session_options=so)
    cls, extra = SCHEDULERS[scheduler]
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def add_stage_timers(pipe) -> dict:
    """Wrap each component's session.run; returns the dict the wrappers add seconds and call counts into."""
    acc = {name: {"s": 0.0, "calls": 0} for name in STAGES}
    for name in STAGES:
        session = getattr(pipe, name).session
        run = session.run

        def timed(*args, _run=run, _acc=acc[name], **kwargs):
            t0 = time.perf_counter()
            try:
                return _run(*args, **kwargs)
            finally:
                _acc["s"] += time.perf_counter() - t0
                _acc["calls"] += 1

        session.run = timed  # instance attribute shadows the method; optimum calls self.session.run(...)
    return acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="folder from benchmarks/optimum_layout.py")
    p.add_argument("--prompt", default="a photograph of an astronaut riding a horse")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--scheduler", choices=sorted(SCHEDULERS), default="ddim")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latents", help="initial latents .npy, float32 [1, C, H/f, W/f] (unscaled N(0,1) noise)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for the latents when --latents is not given")
    p.add_argument("--out", required=True, help="JSON results")
    p.add_argument("--images-out", help="write the last run's images (output_type='np', [N,H,W,3] in [0,1]) here")
    a = p.parse_args()

    torch.set_num_threads(a.threads)  # scheduler math and CFG combine run in torch inside the pipeline
    t0 = time.perf_counter()
    pipe = load(a.model, a.threads, a.scheduler)
    load_s = time.perf_counter() - t0
    acc = add_stage_timers(pipe)

    latents = torch.from_numpy(np.load(a.latents).astype(np.float32)) if a.latents else None

    def generate():
        gen = None if latents is not None else torch.Generator().manual_seed(a.seed)
        return pipe(a.prompt, negative_prompt=a.negative_prompt, num_inference_steps=a.steps, height=a.height,
                    width=a.width, guidance_scale=a.guidance, latents=latents, generator=gen,
                    output_type="np").images

    generate()  # warm-up
    runs, stages = [], []
    for _ in range(a.repeats):
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

    if a.images_out:
        np.save(a.images_out, images)
    from importlib.metadata import version

    result = {
        "runner": "optimum ORTStableDiffusionPipeline",
        "args": vars(a),
        "load_s": load_s,
        "runs_s": runs,
        "median_s": statistics.median(runs),
        "stages": stages,
        "stage_medians_s": {k: statistics.median(s[k] for s in stages)
                            for k in [f"{n}_s" for n in STAGES] + ["other_s"]},
        "versions": {d: version(d) for d in ("optimum-onnx", "optimum", "onnxruntime", "diffusers",
                                             "transformers", "torch", "numpy")},
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"median_s": result["median_s"], **result["stage_medians_s"]}))


if __name__ == "__main__":
    main()
