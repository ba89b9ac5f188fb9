"""Time optimum's ONNX Runtime Stable Diffusion pipeline on our own exported ONNX files.

Run it with the OPTIMUM venv's python, not the main one:

    .venv-optimum/bin/python benchmarks/optimum_sd_runner.py --model DIR --out result.json ...

Why a separate venv: optimum's ORT pipelines live in `optimum-onnx`, which pins transformers<4.58, and
diffusers>=0.40 needs huggingface_hub>=1.x while transformers 4.57 needs huggingface_hub<1.0; the main venv
has transformers 5 / diffusers 0.42. So this script imports only optimum-side packages and talks to the main
side through files: DIR is a folder made by benchmarks/optimum_layout.py (links to the same .onnx files our
sampler runs), the initial latents come in as .npy and the images go out as .npy. Install the venv with
benchmarks/optimum-constraints.txt.

Timing (benchmarks/peer_runner.py): the first generation timed on its own, then --repeats timed ones
(time.perf_counter around the pipeline call). Per-stage times wrap each component's `InferenceSession.run`
(pure ONNX Runtime time, summed over calls); `other_s` is the rest: scheduler math, tokenizer,
numpy<->torch copies, image post-processing. Peak RSS is the process's VmHWM.
"""

from __future__ import annotations

import time

import peer_runner


def load(model: str, threads: int, scheduler: str):
    import onnxruntime as ort
    from optimum.onnxruntime import ORTStableDiffusionPipeline

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    pipe = ORTStableDiffusionPipeline.from_pretrained(model, export=False, provider="CPUExecutionProvider",
                                                      session_options=so)
    peer_runner.set_scheduler(pipe, scheduler)
    return pipe


def main() -> None:
    a = peer_runner.parser(__doc__.splitlines()[0]).parse_args()
    peer_runner.start()
    import torch

    torch.set_num_threads(a.threads)  # scheduler math and CFG combine run in torch inside the pipeline
    t0 = time.perf_counter()
    pipe = load(a.model, a.threads, a.scheduler)
    load_s = time.perf_counter() - t0
    acc = peer_runner.add_stage_timers({name: (getattr(pipe, name).session, "run") for name in peer_runner.STAGES})
    result, images = peer_runner.measure(peer_runner.generator(pipe, a), acc, a.repeats)
    peer_runner.finish(a, {"runner": "optimum ORTStableDiffusionPipeline", "load_s": load_s, **result}, images,
                       ("optimum-onnx", "optimum", "onnxruntime", "diffusers", "transformers", "torch", "numpy"))


if __name__ == "__main__":
    main()
