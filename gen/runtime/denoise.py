"""The denoising loop every diffusion family shares: scheduler steps, batched classifier-free
guidance, and host-drawn noise for stochastic steps.

A family describes its network call as data (`DenoiserCall`), not as a closure, so a backend that
can keep the whole loop on its device (ORT: gen.runtime.backends.ort_loop) runs it there; the host
loop here runs it everywhere else, and wherever a step needs host code (classifier guidance's
gradient step, inpainting's blend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class DenoiserCall:
    """One call of the denoising network per step: its component, the dtype of its `timestep`
    input, the feeds every step shares (class labels, text embeddings) and an optional `condition`
    appended to the sample's channels (an inpainting UNet's mask and masked-image latents)."""

    component: str
    timestep_dtype: type
    constant: dict[str, np.ndarray] = field(default_factory=dict)
    condition: np.ndarray | None = None

    def feeds(self, model_in: np.ndarray, t) -> dict[str, np.ndarray]:
        if self.condition is not None:
            model_in = np.concatenate([model_in, self.condition], axis=1)
        return {"sample": model_in, "timestep": np.full(len(model_in), t, dtype=self.timestep_dtype), **self.constant}


def model_input(sched, x: np.ndarray, t, guided: bool) -> np.ndarray:
    """The sample as the network takes it at t, doubled for classifier-free guidance."""
    model_in = sched.scale_model_input(x, t)
    return np.concatenate([model_in, model_in]) if guided else model_in


def mix_guidance(out, n: int, guidance: float, unconditional_first: bool):
    """Classifier-free guidance's u + w (c - u) of a doubled batch's halves, in the output's float32
    (numpy or torch alike)."""
    first, second = out[:n], out[n:]
    u, c = (first, second) if unconditional_first else (second, first)
    return u + float(np.float32(guidance)) * (c - u)


def denoise(sched, x: np.ndarray, rng, backend, call: DenoiserCall, guidance: float | None = None,
            unconditional_first: bool = True, on_step: Callable | None = None,
            after_step: Callable | None = None, guide: Callable | None = None) -> np.ndarray:
    """Run `sched` from x to the end of its schedule with `backend` running `call`.

    With `guidance`, the input is doubled and the call's constant feeds must put the unconditional
    half first (diffusers' order for prompts) or second (`unconditional_first=False`, gen's order
    for class labels); the two halves are mixed as u + w (c - u).
    `on_step(i, steps, x0)` runs after each step with its predicted clean sample (previews, progress);
    an exception it raises stops sampling (a cancelled request).
    `guide(model_input, t, output) -> output` may change the (guided) network output before the step
    (classifier guidance adds a classifier's gradient).
    `after_step(i, x) -> x` may change the sample after each step (inpainting puts the kept region back).
    Without those two, and with a scheduler whose steps are its coefficients (`linear_steps`), a
    backend with a device-resident loop (`resident_loop`) runs the whole loop.
    """
    if guide is None and after_step is None and sched.linear_steps and backend.resident_loop:
        return backend.denoise_resident(sched, x, rng, call, guidance, unconditional_first, on_step)
    n = len(x)
    for i, t in enumerate(sched.timesteps):
        model_in = model_input(sched, x, t, guidance is not None)
        out = backend.run(call.component, call.feeds(model_in, t))
        if guidance is not None:
            out = mix_guidance(out, n, guidance, unconditional_first)
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
