"""The denoising loop with its sample kept on the eager / compile backends' device, as torch tensors.

The same arithmetic as the host loop, by the same code: the scheduler's `StepCoefficients` applied by
`apply_coefficients` (float64) and guidance's `mix_guidance` (float32), only on tensors. What crosses
to the device each step is the noise of stochastic schedulers (drawn on the host with numpy, so a
seed gives the same images on every backend) and, back to the host, the preview when `on_step` asks
for one; the sample comes back once, at the end. On CUDA no step waits for the GPU (the noise goes
from pinned memory, asynchronously; the input divisors are on the device from the start), so the next
step's kernels queue while the GPU runs this one's; unless `on_step` asks for previews, which wait.

Checked on the CPU: the host loop's images bit for bit (tests/runtime/test_resident_loop.py). On an
H200 (benchmarks/gpu_check.sh, 2026-12-04) its images were as far from CPU fp32 as the host loop's
(the same max abs difference, to every digit recorded), and it was 1.21x faster on the
default DDPM in eager fp16 (334 against 404 ms, n = 16, 50 DDIM steps); on the SD model, whose UNet
call is the bulk of each step, it was within noise (924 against 854 ms, one run).
"""

from __future__ import annotations

import time

import numpy as np

from gen.errors import GenError
from gen.runtime.denoise import DenoiserCall, mix_guidance, model_input
from gen.runtime.schedulers import apply_coefficients
from gen.runtime.validate import check_feeds


def denoise_on_device(backend, sched, x: np.ndarray, rng, call: DenoiserCall, guidance: float | None,
                      unconditional_first: bool, on_step) -> np.ndarray:
    torch = backend._torch
    guided, n, steps = guidance is not None, len(x), len(sched.timesteps)
    cuda = backend.device == "cuda"
    first = call.feeds(model_input(sched, x, sched.timesteps[0], guided), sched.timesteps[0])
    check_feeds(call.component, backend.bundle.signature(call.component), first)  # as every backend call is
    coefficients = [sched.coefficients(i, history=i > 0) for i in range(steps)]
    if any(c.next_noise for c in coefficients) and not sched.needs_noise:
        raise GenError(f"scheduler {sched.name!r} adds noise but says needs_noise=False: no noise would be drawn")
    with torch.inference_mode():
        constant = {k: backend.tensor(v) for k, v in call.constant.items()}
        condition = None if call.condition is None else torch.from_numpy(call.condition).to(backend.device)
        sample = torch.from_numpy(np.ascontiguousarray(x)).to(backend.device)
        # the input divisors on the device once, as 0-dim tensors: float32 true division as the host's
        # scale_model_input, and no copy (a wait for the GPU) inside the loop
        divisors = torch.tensor([np.float32(c.input_divisor) for c in coefficients], device=backend.device)
        timestep_dtype = getattr(torch, np.dtype(call.timestep_dtype).name)
    previous, t_loop = None, time.perf_counter()
    for i, (t, c) in enumerate(zip(sched.timesteps, coefficients)):
        with torch.inference_mode():
            model_in = sample if c.input_divisor == 1.0 else sample / divisors[i]
            if guided:
                model_in = torch.cat([model_in, model_in])
            if condition is not None:
                model_in = torch.cat([model_in, condition], dim=1)
            timestep = torch.full((len(model_in),), t, dtype=timestep_dtype, device=backend.device)
            t0 = time.perf_counter()
            out = backend.forward(call.component, {"sample": backend.tensor(model_in), "timestep": backend.tensor(timestep),
                                                   **constant})[0]
            if not cuda:  # on CUDA the call only queues kernels: the whole loop is counted below
                backend.count(call.component, time.perf_counter() - t0)
            if i == 0 and tuple(out.shape) != (len(model_in), *x.shape[1:]):
                raise GenError(f"{call.component} returned shape {list(out.shape)} for an input of shape "
                               f"{list(model_in.shape)}; the denoising loop needs {[len(model_in), *x.shape[1:]]}")
            if guided:
                out = mix_guidance(out, n, guidance, unconditional_first)
            noise = rng.standard_normal(x.shape, dtype=np.float32) if sched.needs_noise else None  # the host loop's draws
            if c.next_noise:
                noise = torch.from_numpy(noise)
                if cuda:  # from pinned memory without waiting: the GPU may still be running the last step
                    noise = noise.pin_memory().to(backend.device, non_blocking=True)
                noise = noise.to(backend.device, torch.float64)
            following, previous, preview = apply_coefficients(c, sample.double(), out.double(), previous, noise, torch.clamp)
            sample = following.float()
        if on_step is not None:  # outside inference mode, as on the host loop
            on_step(i, steps, preview.cpu().numpy())
    result = sample.cpu().numpy()
    if cuda:  # the networks' share of the loop is not separable without a wait per step: all of it
        backend.count(call.component, time.perf_counter() - t_loop, calls=steps)
    if not np.isfinite(result).all():
        raise GenError(f"{call.component} produced NaN or infinite values while sampling")
    return result
