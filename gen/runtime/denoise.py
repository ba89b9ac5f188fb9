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


class DenoiseState:
    """One request's place in the denoising loop: its sample, scheduler (and so its timesteps), step
    index, noise generator, guidance and network call, with the network call itself left out. The
    loop alone (`denoise`) and a batcher stepping many requests with one network call per step
    (gen.runtime.step_batch) both run it, so a request's images do not depend on who else ran."""

    def __init__(self, sched, x: np.ndarray, rng, call: DenoiserCall, guidance: float | None = None,
                 unconditional_first: bool = True, on_step: Callable | None = None,
                 after_step: Callable | None = None, guide: Callable | None = None):
        self.sched, self.x, self.rng, self.call, self.guidance = sched, x, rng, call, guidance
        self.unconditional_first, self.on_step, self.after_step, self.guide = unconditional_first, on_step, after_step, guide
        self.i, self.model_in = 0, None

    @property
    def done(self) -> bool:
        return self.i >= len(self.sched.timesteps)

    def feeds(self) -> dict[str, np.ndarray]:
        """The network's feeds for this step (batch-major: rows of several requests concatenate)."""
        t = self.sched.timesteps[self.i]
        self.model_in = model_input(self.sched, self.x, t, self.guidance is not None)
        return self.call.feeds(self.model_in, t)

    def advance(self, out) -> None:
        """Take this step with the network's output for the feeds() just given."""
        sched, n, t = self.sched, len(self.x), self.sched.timesteps[self.i]
        if self.guidance is not None:
            out = mix_guidance(out, n, self.guidance, self.unconditional_first)
        if self.guide is not None:
            out = self.guide(self.model_in[:n], t, out)
        noise = self.rng.standard_normal(self.x.shape, dtype=np.float32) if sched.needs_noise else None
        result = sched.step(out, t, self.x, noise=noise)
        self.x, i = result.prev_sample, self.i
        if self.after_step is not None:
            self.x = self.after_step(i, self.x)
        self.i += 1
        if self.on_step is not None:
            self.on_step(i, len(sched.timesteps), result.pred_original_sample)


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
    backend with a device-resident loop (`resident_loop`) runs the whole loop. A backend that batches
    concurrent requests' steps (`join_steps`, gen.runtime.step_batch) runs this request's state among theirs.
    """
    if guide is None and after_step is None and sched.linear_steps and backend.resident_loop:
        return backend.denoise_resident(sched, x, rng, call, guidance, unconditional_first, on_step)
    state = DenoiseState(sched, x, rng, call, guidance, unconditional_first, on_step, after_step, guide)
    join = getattr(backend, "join_steps", None)
    if join is not None:
        return join(state)
    while not state.done:
        state.advance(backend.run(call.component, state.feeds()))
    return state.x
