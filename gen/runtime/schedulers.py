"""Diffusion sampling schedulers in plain numpy, following diffusers' `set_timesteps` / `step` protocol.

The runtime samples on hosts without torch, so this re-implements the diffusers schedulers that a
bundle's scheduler config can drive (DDPM, DDIM, DPM-Solver++(2M), Euler, LCM) with diffusers'
default options; tests/runtime/test_schedulers.py checks them against diffusers step by step.

The config is a bundle's DDPMScheduler arguments or a Stable Diffusion `scheduler_config.json` as is:
keys a scheduler does not use (`_class_name`, PNDM's `skip_prk_steps`, ...) are ignored, as diffusers'
`from_config` ignores them, and missing keys take `_DEFAULTS`.

Noise for stochastic steps is an argument, not drawn here: the caller draws it with numpy on the
host, so one seed gives the same images on every backend. Typical loop::

    s = make_scheduler("dpm++", manifest_scheduler_config)
    s.set_timesteps(20)
    x = rng.standard_normal(shape).astype(np.float32) * s.init_noise_sigma
    for t in s.timesteps:
        out = model(s.scale_model_input(x, t), t)
        x = s.step(out, t, x, rng.standard_normal(shape) if s.needs_noise else None).prev_sample

`step` returns both the next sample and its predicted clean image x0 (`pred_original_sample`, as
diffusers names it), which previews and consistency students use. Schedulers register by name
(`register_scheduler`); `make_scheduler` builds one from a bundle's config.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class SchedulerOutput(NamedTuple):
    prev_sample: np.ndarray  # x at the next (less noisy) timestep, in the input's dtype
    pred_original_sample: np.ndarray  # the model's estimate of the clean image x0 at this step (float64)


class StepCoefficients(NamedTuple):
    """One scheduler step as numbers, so the host's numpy step and a device-resident loop (the ORT
    backend's, gen/runtime/graphs/step.onnx) run one definition of the arithmetic:

        model input = x / input_divisor
        x0      = clip(x0_x * x + x0_out * out, -clip, clip)            (clip None: not clipped)
        next    = next_x * x + next_out * out + next_x0 * x0 + next_prev * prev_x0 + next_noise * noise
        preview = preview_x * x + preview_x0 * x0                      (what on_step is shown)

    `out` is the (guided) model output, `prev_x0` the previous step's x0 (multistep solvers), `noise`
    a standard normal draw (none is needed where next_noise is 0)."""

    x0_x: float
    x0_out: float
    clip: float | None
    next_x: float
    next_out: float = 0.0
    next_x0: float = 0.0
    next_prev: float = 0.0
    next_noise: float = 0.0
    preview_x: float = 0.0
    preview_x0: float = 1.0
    input_divisor: float = 1.0


_CLASSES: dict[str, type] = {}


def register_scheduler(cls):
    """Class decorator: make `cls` available to make_scheduler under `cls.name`."""
    _CLASSES[cls.name] = cls
    return cls

# diffusers' defaults (DDPMScheduler's where schedulers differ, e.g. clip_sample), except
# timestep_spacing: gen's DDPM bundles always write it, and "trailing" is the sound choice for them.
# diffusers' default is "leading", which is what an old scheduler_config.json without the key (SD 1.x)
# means: the caller completes such a config with timestep_spacing="leading" before passing it here.
_DEFAULTS = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02,
             "prediction_type": "epsilon", "clip_sample": True, "clip_sample_range": 1.0,
             "timestep_spacing": "trailing", "steps_offset": 0, "set_alpha_to_one": True,
             "original_inference_steps": 50, "timestep_scaling": 10.0}
_CHOICES = {"beta_schedule": ("linear", "scaled_linear", "squaredcos_cap_v2"),
            "prediction_type": ("epsilon", "v_prediction"),
            "timestep_spacing": ("trailing", "leading", "linspace")}
# DDPMScheduler options not implemented here, with the value that is safe to ignore: any other value
# would silently sample a different process than the model was trained for, so it is refused.
_UNSUPPORTED = {"trained_betas": None, "thresholding": False, "rescale_betas_zero_snr": False,
                "variance_type": "fixed_small"}


def alphas_cumprod(num_train_timesteps: int, beta_schedule: str, beta_start: float, beta_end: float) -> np.ndarray:
    """alpha_bar_t for t = 0..T-1, built in float32 as diffusers builds it, so the noise levels are
    the ones the model was trained on; returned as float64 for the step arithmetic."""
    n = num_train_timesteps
    if beta_schedule == "linear":
        betas = np.linspace(beta_start, beta_end, n)
    elif beta_schedule == "scaled_linear":  # linear in sqrt(beta) (Stable Diffusion), squared in float32
        betas = np.linspace(beta_start**0.5, beta_end**0.5, n).astype(np.float32) ** 2
    else:  # squaredcos_cap_v2 (Nichol & Dhariwal 2021), betas capped at 0.999 as in diffusers
        f = np.cos((np.arange(n + 1) / n + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = np.minimum(1 - f[1:] / f[:-1], 0.999)
    alphas = 1 - betas.astype(np.float32)
    # torch's float32 cumprod accumulates in double, so this gives diffusers' values (numpy's float32
    # cumprod would drift by ~3e-7)
    return np.cumprod(alphas, dtype=np.float64).astype(np.float32).astype(np.float64)


def spaced_timesteps(n_train: int, steps: int, spacing: str, *, skip_zero: bool = False,
                     offset: int = 0) -> np.ndarray:
    """The descending training timesteps to sample at, per diffusers' `timestep_spacing`.

    `skip_zero` is DPM-Solver's variant of "leading" and "linspace": it spaces steps + 1 points and
    drops the last one (t = 0), as diffusers' DPMSolverMultistepScheduler does. `offset` is config
    steps_offset, which every diffusers scheduler here adds to "leading" timesteps only (SD uses 1, so
    its schedule ends at t = 1 rather than 0).
    """
    if spacing == "trailing":
        ts = np.round(np.arange(n_train, 0, -n_train / steps)) - 1
    elif skip_zero:
        ts = spaced_timesteps(n_train, steps + 1, spacing, offset=offset)[:-1]
    elif spacing == "leading":
        ts = np.arange(steps)[::-1] * (n_train // steps) + offset
    else:  # linspace
        ts = np.linspace(0, n_train - 1, steps).round()[::-1]
    return np.ascontiguousarray(ts, dtype=np.int64)


def apply_coefficients(c: StepCoefficients, x, out, previous_x0, noise, clip):
    """One step's arithmetic on float64 arrays of any library with * and + (numpy on the host, torch
    on a device), `clip(a, low, high)` being that library's: (next sample, x0, preview). The terms
    are added in the ONNX step graph's order (gen/runtime/graphs), so all three give the same bits."""
    x0 = c.x0_x * x + c.x0_out * out
    if c.clip is not None:
        x0 = clip(x0, -c.clip, c.clip)
    following = c.next_x * x
    if c.next_out:
        following = following + c.next_out * out
    following = following + c.next_x0 * x0
    if c.next_prev:
        following = following + c.next_prev * previous_x0
    if c.next_noise:
        following = following + c.next_noise * noise
    preview = x0 if (c.preview_x, c.preview_x0) == (0.0, 1.0) else c.preview_x * x + c.preview_x0 * x0
    return following, x0, preview


def _integer(name: str, value, low: int, high: int | None = None, high_name: str = "") -> int:
    """value as an int, or a ValueError saying which integers `name` takes (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low \
            or (high is not None and value > high):
        allowed = f"from {low} to {high_name} ({high})" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)


def classifier_guided(model_output, grad, scale: float, alpha_bar: float, prediction_type: str):
    """eps' = eps - sqrt(1 - a) s grad_x log p(y | x_t), as the model's own kind of output (numpy or
    torch alike). For v = sqrt(a) eps - sqrt(1 - a) x0 the same change of eps, with x_t held, moves v
    by (1 / sqrt(a)) times it: v' = v - sqrt((1 - a) / a) s grad."""
    factor = math.sqrt(1 - alpha_bar) if prediction_type == "epsilon" else math.sqrt((1 - alpha_bar) / alpha_bar)
    return model_output - (factor * scale) * grad


class Scheduler:
    """The public base: shared config parsing, timestep lookup, model-output conversion and noise checks."""

    name = ""
    needs_noise = False
    init_noise_sigma = 1.0
    _skip_zero = False  # see spaced_timesteps

    def __init__(self, config: dict):
        cfg = {**_DEFAULTS, **config}
        for key, allowed in _CHOICES.items():
            if cfg[key] not in allowed:
                raise ValueError(f"unsupported {key} {cfg[key]!r}; choose one of {', '.join(allowed)}")
        for key, safe in _UNSUPPORTED.items():
            if cfg.get(key, safe) != safe:
                raise ValueError(f"scheduler option {key}={cfg[key]!r} is not supported (only {safe!r})")
        self.config = cfg
        self.num_train_timesteps = int(cfg["num_train_timesteps"])
        self.prediction_type = cfg["prediction_type"]
        self.timestep_spacing = cfg["timestep_spacing"]
        self.steps_offset = _integer("steps_offset", cfg["steps_offset"], 0)
        self.clip_range = float(cfg["clip_sample_range"]) if cfg["clip_sample"] else None
        self.alphas_cumprod = alphas_cumprod(self.num_train_timesteps, cfg["beta_schedule"],
                                             float(cfg["beta_start"]), float(cfg["beta_end"]))
        self.timesteps = np.zeros(0, dtype=np.int64)

    def set_timesteps(self, steps: int) -> None:
        n = self.num_train_timesteps
        steps = _integer("steps", steps, 1, n, "num_train_timesteps")
        ts = spaced_timesteps(n, steps, self.timestep_spacing, skip_zero=self._skip_zero,
                              offset=self.steps_offset)
        if len(ts) != steps or np.any(np.diff(ts) >= 0) or ts[-1] < 0:
            raise ValueError(f"timestep_spacing {self.timestep_spacing!r} repeats timesteps at {steps} "
                             "steps; use fewer steps or 'trailing'")
        if ts[0] >= n:  # diffusers would index past its tables (or, Euler, clamp sigma)
            raise ValueError(f"steps_offset {self.steps_offset} moves the first of {steps} 'leading' timesteps "
                             f"to {ts[0]}, past the last training timestep {n - 1}; use fewer steps")
        self.timesteps = ts
        self._prev = None

    def scale_model_input(self, x: np.ndarray, t) -> np.ndarray:
        """The sample as the model takes it at t: x / input_divisor, in x's dtype as diffusers does (at
        Euler's sigma_max one ulp of difference in the model input becomes ~1e-3 in the sample)."""
        if not self.linear_steps:  # a scheduler that defines step() itself scales nothing unless it says so
            return x
        divisor = self.coefficients(self._index(t)).input_divisor
        if divisor == 1.0:
            return x
        x = np.asarray(x)
        return x / np.asarray(divisor, dtype=x.dtype if x.dtype.kind == "f" else np.float64)

    def coefficients(self, i: int, history: bool = False) -> StepCoefficients:
        """Step i of the schedule set; `history`: the previous step's x0 is at hand (multistep).
        A new scheduler defines this (and gets step() and the device-resident loop), or defines
        step() and scale_model_input() itself (and steps on the host)."""
        raise NotImplementedError

    @property
    def linear_steps(self) -> bool:
        """Whether step() is the base's application of coefficients(), so that a device loop that
        applies the coefficients itself takes the same steps."""
        cls = type(self)
        return cls.coefficients is not Scheduler.coefficients and cls.step is Scheduler.step

    multistep = False  # steps use the previous step's x0 (next_prev), which step() keeps
    _prev = None  # (index, x0) of the previous step, kept by multistep schedulers

    def step(self, model_output, t, x, noise=None) -> SchedulerOutput:
        """x at the next timestep, and the preview x0, from the model's output at t (float64 inside)."""
        i = self._index(t)
        history = self._prev is not None and self._prev[0] == i - 1
        c = self.coefficients(i, history)
        x64 = np.asarray(x, np.float64)
        noise = self._noise(noise, x64, t) if c.next_noise else None
        following, x0, preview = apply_coefficients(c, x64, np.asarray(model_output, np.float64),
                                                    self._prev[1] if c.next_prev else None, noise, np.clip)
        if self.multistep:
            self._prev = (i, x0)
        return SchedulerOutput(following.astype(np.asarray(x).dtype), preview)

    def start_at(self, strength: float) -> int:
        """Image-to-image: keep the last int(steps x strength) steps of the schedule set (diffusers'
        get_timesteps); returns how many are left."""
        steps = len(self.timesteps)
        begin = steps - min(int(steps * strength), steps)
        self.timesteps = self.timesteps[begin:]
        if hasattr(self, "sigmas"):
            self.sigmas = self.sigmas[begin:]
        return len(self.timesteps)

    def add_noise(self, x0: np.ndarray, noise: np.ndarray, t) -> np.ndarray:
        """x0 forward-noised to timestep t: sqrt(a) x0 + sqrt(1 - a) eps (diffusers' add_noise)."""
        a = self.alphas_cumprod[int(t)]
        return (math.sqrt(a) * np.asarray(x0, np.float64) + math.sqrt(1 - a) * np.asarray(noise, np.float64)).astype(np.float32)

    def guide(self, model_output: np.ndarray, t, grad: np.ndarray, scale: float) -> np.ndarray:
        """Classifier guidance: the model output with the noise estimate moved along the classifier's
        gradient, eps' = eps - sqrt(1 - a) s grad (Dhariwal & Nichol 2021). See classifier_guided."""
        return classifier_guided(model_output, grad, scale, float(self.alphas_cumprod[int(t)]), self.prediction_type)

    def _index(self, t) -> int:
        """Position of t in the schedule: like diffusers, a step is identified by its timestep."""
        if not len(self.timesteps):
            raise ValueError(f"{self.name}: call set_timesteps before step")
        hits = np.flatnonzero(self.timesteps == t)
        if not len(hits):
            raise ValueError(f"{self.name}: timestep {t!r} is not in the schedule set by set_timesteps")
        return int(hits[0])

    def _conversion(self, alpha_bar: float, x_scale: float = 1.0) -> tuple[float, float, float, float]:
        """(x0_x, x0_out, eps_x, eps_out): x0_hat and eps_hat as linear maps of (x, model output) for
        x_scale x = sqrt(a) x0 + sqrt(1 - a) eps, with v = sqrt(a) eps - sqrt(1 - a) x0."""
        a, s = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
        if self.prediction_type == "epsilon":
            return x_scale / a, -s / a, 0.0, 1.0
        return a * x_scale, -s, s * x_scale, a

    def _noise(self, noise, x, t) -> np.ndarray:
        if noise is None:
            raise ValueError(f"{self.name} step at t={t} needs noise: pass noise=rng.standard_normal(x.shape)")
        noise = np.asarray(noise, np.float64)
        if noise.shape != x.shape:
            raise ValueError(f"noise has shape {noise.shape}, expected the sample's shape {x.shape}")
        return noise


@register_scheduler
class DDPM(Scheduler):
    """Ancestral sampling (Ho et al. 2020) from the posterior q(x_prev | x_t, x0_hat), with the
    "fixed_small" (posterior) variance; with fewer steps the posterior spans the skipped timesteps,
    as in diffusers' DDPMScheduler. Predicted x0 is clipped when config clip_sample is set."""

    name = "ddpm"
    needs_noise = True

    def coefficients(self, i, history=False):
        ts = self.timesteps
        a_t = self.alphas_cumprod[ts[i]]
        a_prev = self.alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else 1.0
        beta = 1 - a_t / a_prev  # the effective beta over the (possibly skipped) interval
        x0_x, x0_out, _, _ = self._conversion(a_t)
        # the posterior mean (sqrt(a_prev) beta x0 + sqrt(1 - beta)(1 - a_prev) x) / (1 - a_t), plus noise
        # whenever t > 0 as diffusers does, its variance clamped away from 0
        std = math.sqrt(max((1 - a_prev) / (1 - a_t) * beta, 1e-20)) if ts[i] > 0 else 0.0
        return StepCoefficients(x0_x, x0_out, self.clip_range, next_x=math.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t),
                                next_x0=math.sqrt(a_prev) * beta / (1 - a_t), next_noise=std)


@register_scheduler
class DDIM(Scheduler):
    """DDIM (Song et al. 2021, eq. 12): eta = 0 is deterministic, eta = 1 matches DDPM's variance.
    After the last step alpha_bar is 1, or alpha_bar_0 with config set_alpha_to_one false (SD's
    configs: the model never saw t = -1). Clips x0 like DDPM."""

    name = "ddim"

    def __init__(self, config: dict, eta: float = 0.0):
        super().__init__(config)
        if not eta >= 0:
            raise ValueError(f"eta must be >= 0, got {eta!r}")
        self.eta = float(eta)
        self.needs_noise = self.eta > 0
        self.final_alpha_bar = 1.0 if self.config["set_alpha_to_one"] else self.alphas_cumprod[0]

    def coefficients(self, i, history=False):
        ts = self.timesteps
        a_t = self.alphas_cumprod[ts[i]]
        # The schedule's next timestep, as DDPM (and the paper) use. diffusers' DDIM uses t - T // steps,
        # the same timestep for "leading" (with any steps_offset) and for "trailing" when steps divides
        # T, but otherwise one off the schedule (and not the final alpha_bar after the last step when
        # that is still >= 0, e.g. steps_offset >= T // steps); see test_ddim_eta0_is_song_eq12.
        a_prev = self.alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else self.final_alpha_bar
        x0_x, x0_out, eps_x, eps_out = self._conversion(a_t)
        std = self.eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        # sqrt(a_prev) x0 + sqrt(1 - a_prev - std^2) eps + std noise, eps unclipped as in diffusers
        direction = math.sqrt(1 - a_prev - std**2)
        return StepCoefficients(x0_x, x0_out, self.clip_range, next_x=direction * eps_x, next_out=direction * eps_out,
                                next_x0=math.sqrt(a_prev), next_noise=std)


class _SigmaScheduler(Scheduler):
    """Base for schedulers that work in sigma = sqrt((1 - alpha_bar) / alpha_bar), the noise-to-signal
    ratio, over the schedule's timesteps plus a final sigma of 0 (clean data)."""

    def set_timesteps(self, steps: int) -> None:
        super().set_timesteps(steps)
        ab = self.alphas_cumprod[self.timesteps]
        # rounded to float32 as diffusers stores them, so init_noise_sigma is the same number
        self.sigmas = np.append(np.sqrt((1 - ab) / ab), 0.0).astype(np.float32).astype(np.float64)

    def add_noise(self, x0, noise, t):
        """In the VP form through the stored sigma, as diffusers' sigma schedulers do."""
        s = self.sigmas[self._index(t)]
        alpha = 1 / math.sqrt(s * s + 1)
        return (alpha * np.asarray(x0, np.float64) + s * alpha * np.asarray(noise, np.float64)).astype(np.float32)


@register_scheduler
class DPMSolverPP(_SigmaScheduler):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): a second-order multistep solver of the
    diffusion ODE in data (x0) prediction, in log-SNR time lambda = -log(sigma). As diffusers'
    DPMSolverMultistepScheduler defaults (midpoint, lower_order_final, final sigma 0), the first
    step (no history yet) and the last step (to sigma 0) are first order, i.e. DDIM steps.
    Predicted x0 is not clipped (diffusers ignores clip_sample here)."""

    name = "dpm++"
    _skip_zero = True
    multistep = True

    def coefficients(self, i, history=False):
        s, s_next = self.sigmas[i], self.sigmas[i + 1]
        x0_x, x0_out, _, _ = self._conversion(1 / (s * s + 1))
        # x_next = (sigma_t_next / sigma_t) x - alpha_next (e^-h - 1) D with VP alpha_t = 1/sqrt(s^2+1),
        # sigma_t = s alpha_t and e^-h = s_next / s; written so that s_next = 0 gives x_next = D.
        alpha, alpha_next = 1 / math.sqrt(s * s + 1), 1 / math.sqrt(s_next * s_next + 1)
        to_d = alpha_next * (1 - s_next / s)
        d_x0, d_prev = 1.0, 0.0  # D = x0: first order
        if history and s_next > 0:
            # D = (1 + 1/2r) x0_i - 1/2r x0_{i-1}, r = h_{i-1} / h_i, h = lambda step
            r = math.log(self.sigmas[i - 1] / s) / math.log(s / s_next)
            d_x0, d_prev = 1 + 1 / (2 * r), -1 / (2 * r)
        return StepCoefficients(x0_x, x0_out, None, next_x=(s_next * alpha_next) / (s * alpha),
                                next_x0=to_d * d_x0, next_prev=to_d * d_prev)


@register_scheduler
class Euler(_SigmaScheduler):
    """Euler's method on the probability-flow ODE dx/dsigma = (x - x0_hat) / sigma in the variance-
    exploding parameterisation x = x0 + sigma eps (Karras et al. 2022, Algorithm 2 without churn),
    as diffusers' EulerDiscreteScheduler. The model sees x / sqrt(sigma^2 + 1), the VP sample it was
    trained on. Predicted x0 is not clipped (diffusers ignores clip_sample here). With "linspace"
    spacing diffusers uses fractional timesteps; here they are rounded, like DDPM's and DDIM's, to
    keep timesteps integer (what the exported model takes) and sigma consistent with them."""

    name = "euler"

    @property
    def init_noise_sigma(self) -> float:
        """Std of the initial sample; diffusers uses sigma_max (sqrt(sigma_max^2 + 1) for "leading")."""
        s_max = self.sigmas[0] if len(self.timesteps) else math.sqrt(1 / self.alphas_cumprod[-1] - 1)
        return float(s_max if self.timestep_spacing != "leading" else math.sqrt(s_max**2 + 1))

    def add_noise(self, x0, noise, t):
        """Variance-exploding: x0 + sigma eps (diffusers' EulerDiscreteScheduler.add_noise)."""
        s = self.sigmas[self._index(t)]
        return (np.asarray(x0, np.float64) + s * np.asarray(noise, np.float64)).astype(np.float32)

    def coefficients(self, i, history=False):
        s, s_next = self.sigmas[i], self.sigmas[i + 1]
        # x0_hat from the VP view of x (x_vp = x / sqrt(s^2+1), alpha_bar = 1 / (s^2+1)); the model sees x_vp
        x0_x, x0_out, _, _ = self._conversion(1 / (s * s + 1), x_scale=1 / math.sqrt(s * s + 1))
        # x + (x - x0) / s * (s_next - s)
        return StepCoefficients(x0_x, x0_out, None, next_x=1 + (s_next - s) / s, next_x0=-(s_next - s) / s,
                                input_divisor=math.sqrt(s * s + 1))


@register_scheduler
class LCM(Scheduler):
    """Latent Consistency Model sampling (Luo et al. 2023), i.e. multistep consistency sampling (Song et
    al. 2023, Algorithm 1), as diffusers' LCMScheduler: each step maps x_t to x0 through the consistency
    function c_skip x + c_out x0_hat (the boundary condition makes it the identity at t = 0) and, but
    after the last step, re-noises that to the next timestep with fresh noise. The timesteps are LCM's
    own: every T // original_inference_steps-th training timestep (the distillation grid), of which
    `steps` evenly spaced ones are taken; timestep_spacing and steps_offset do not apply. Clips x0 when
    config clip_sample is set, as diffusers does."""

    name = "lcm"
    needs_noise = True
    sigma_data = 0.5  # diffusers' (and the paper's) fixed data std in c_skip / c_out

    def __init__(self, config: dict):
        super().__init__(config)
        self.original_inference_steps = _integer("original_inference_steps", self.config["original_inference_steps"],
                                                 1, self.num_train_timesteps, "num_train_timesteps")
        self.timestep_scaling = float(self.config["timestep_scaling"])
        if not self.timestep_scaling > 0:
            raise ValueError(f"timestep_scaling must be > 0, got {self.config['timestep_scaling']!r}")

    def set_timesteps(self, steps: int) -> None:
        orig = self.original_inference_steps
        steps = _integer("steps", steps, 1, orig, "original_inference_steps")
        grid = np.arange(orig, 0, -1) * (self.num_train_timesteps // orig) - 1  # descending
        self.timesteps = grid[np.floor(np.linspace(0, orig, steps, endpoint=False)).astype(np.int64)]

    def coefficients(self, i, history=False):
        t = self.timesteps[i]
        x0_x, x0_out, _, _ = self._conversion(self.alphas_cumprod[t])
        c = float(t) * self.timestep_scaling
        c_skip = self.sigma_data**2 / (c * c + self.sigma_data**2)
        c_out = c / math.sqrt(c * c + self.sigma_data**2)
        # the consistency function's estimate c_out x0 + c_skip x is the step's preview and, but after
        # the last step, is re-noised to the next timestep
        a_next, noise = 1.0, 0.0
        if i + 1 < len(self.timesteps):
            a_next = self.alphas_cumprod[self.timesteps[i + 1]]
            noise = math.sqrt(1 - a_next)
        return StepCoefficients(x0_x, x0_out, self.clip_range, next_x=math.sqrt(a_next) * c_skip,
                                next_x0=math.sqrt(a_next) * c_out, next_noise=noise, preview_x=c_skip, preview_x0=c_out)


SCHEDULERS = tuple(_CLASSES)  # the built-in ones; register_scheduler adds more


def scheduler_names() -> tuple[str, ...]:
    return tuple(_CLASSES)


def make_scheduler(name: str, config: dict, **kwargs):
    """The scheduler called `name` (one of SCHEDULERS) for a model trained with this scheduler config
    (see the module docstring); kwargs go to its constructor (DDIM takes eta)."""
    if name not in _CLASSES:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(scheduler_names())}")
    return _CLASSES[name](config, **kwargs)
