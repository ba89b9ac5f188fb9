"""The denoising loop every diffusion family shares: scheduler steps, batched classifier-free
guidance, and host-drawn noise for stochastic steps."""

from __future__ import annotations

from typing import Callable

import numpy as np


def denoise(sched, x: np.ndarray, rng, predict: Callable, guidance: float | None = None,
            unconditional_first: bool = True, on_step: Callable | None = None,
            after_step: Callable | None = None, guide: Callable | None = None) -> np.ndarray:
    """Run `sched` from x to the end of its schedule.

    `predict(model_input, t)` runs the network. With `guidance`, the input is doubled and predict must
    put the unconditional half first (diffusers' order for prompts) or second (`unconditional_first=False`,
    gen's order for class labels); the two halves are mixed as u + w (c - u).
    `on_step(i, steps, x0)` runs after each step with its predicted clean sample (previews, progress);
    an exception it raises stops sampling (a cancelled request).
    `guide(model_input, t, output) -> output` may change the (guided) network output before the step
    (classifier guidance adds a classifier's gradient).
    `after_step(i, x) -> x` may change the sample after each step (inpainting puts the kept region back).
    """
    n = len(x)
    for i, t in enumerate(sched.timesteps):
        model_in = sched.scale_model_input(x, t)
        if guidance is not None:
            model_in = np.concatenate([model_in, model_in])
        out = predict(model_in, t)
        if guidance is not None:
            first, second = out[:n], out[n:]
            u, c = (first, second) if unconditional_first else (second, first)
            out = u + np.float32(guidance) * (c - u)
        if guide is not None:
            out = guide(model_in[:n], t, out)
        noise = rng.standard_normal(x.shape, dtype=np.float32) if sched.needs_noise else None
        result = sched.step(out, t, x, noise=noise)
        x = result.prev_sample
        if after_step is not None:
            x = after_step(i, x)
        if on_step is not None:
            on_step(i, len(sched.timesteps), result.pred_original_sample)
    return x
