"""gen.runtime.schedulers against diffusers (step by step, same noise) and against the papers' formulas."""

import functools
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from diffusers import (  # noqa: E402
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
)

from gen.runtime.schedulers import SCHEDULERS, make_scheduler  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # diffusers on numpy 2

SHAPE = (2, 3, 8, 8)
REFERENCE = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler,
             "euler": EulerDiscreteScheduler, "lcm": LCMScheduler}
SPACED = tuple(n for n in SCHEDULERS if n != "lcm")  # LCM has its own timesteps: no timestep_spacing
BETAS = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTIONS = ("epsilon", "v_prediction")
# Stable Diffusion 1.5's scheduler_config.json, as the SD bundles carry it
SD15 = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
        "trained_betas": None, "clip_sample": False, "prediction_type": "epsilon", "timestep_spacing": "leading"}


def config(beta_schedule="linear", prediction_type="epsilon", timestep_spacing="trailing", **kw):
    """A bundle manifest's scheduler config; its keys are DDPMScheduler arguments."""
    return {"num_train_timesteps": 1000, "beta_schedule": beta_schedule, "beta_start": 1e-4, "beta_end": 0.02,
            "prediction_type": prediction_type, "clip_sample": True, "timestep_spacing": timestep_spacing, **kw}


def reference(name, cfg):
    """diffusers' scheduler: a real scheduler_config.json (it has _class_name) as is, as a pipeline
    loads it; a bundle's DDPMScheduler arguments completed with DDPMScheduler's defaults."""
    return REFERENCE[name].from_config(cfg if "_class_name" in cfg else DDPMScheduler(**cfg).config)


@functools.cache
def alpha_bar(beta_schedule="linear", beta_start=1e-4, beta_end=0.02):
    return DDPMScheduler(beta_schedule=beta_schedule, beta_start=beta_start,
                         beta_end=beta_end).alphas_cumprod.double().numpy()


def fake_model(x, t, cfg):
    """A stand-in network: the ideal denoiser for N(0, 0.5^2) data plus a nonlinear, t-dependent
    wobble, so samples stay image-scale (as a trained model's do) and errors are measured there."""
    ab = alpha_bar(cfg["beta_schedule"], cfg["beta_start"], cfg["beta_end"])[int(t)]
    a, s = math.sqrt(ab), math.sqrt(1 - ab)
    x = x.astype(np.float64)
    x0 = a * 0.25 / (0.25 * ab + 1 - ab) * x + 0.3 * np.tanh(x) + 0.01 * float(t) / 1000
    eps = (x - a * x0) / s
    return (eps if cfg["prediction_type"] == "epsilon" else a * eps - s * x0).astype(np.float32)


def assert_close(x, xr):
    """|diff| <= 1e-5, relative where |x| > 1: Euler's intermediate samples are sigma-scaled (up to
    ~1e5 with cosine betas), where the float32 spacing alone exceeds 1e-5."""
    excess = np.abs(x.astype(np.float64) - xr) / np.maximum(1.0, np.abs(xr))
    assert excess.max() <= 1e-5, f"max scaled diff {excess.max():.3g}"


def sample_both(name, cfg, steps, eta=0.0, seed=0, ref_dtype=torch.float64):
    """One full sampling loop through ours and diffusers' scheduler in lockstep, with the same noise.

    Both loops carry a float32 sample, as a pipeline does. Ours computes a step in float64; by
    default diffusers' does too here, given float64 model outputs and schedule tables (the same
    float32 values), because its float32 arithmetic alone is off by up to ~5e-3 where sampling is
    ill-conditioned: x0_hat = (x - sqrt(1 - a) eps) / sqrt(a) at t = 999 multiplies the rounding of
    its float32 coefficients by 1 / sqrt(a) (160 with linear betas, 2e4 with cosine ones), and Euler's
    x + d (sigma_next - sigma) cancels at sigma_max ~ 2e4. test_matches_diffusers_float32 compares
    against the plain float32 pipeline where that is well-conditioned.
    """
    ours = make_scheduler(name, cfg, **({"eta": eta} if name == "ddim" else {}))
    ref = reference(name, cfg)
    ours.set_timesteps(steps)
    ref.set_timesteps(steps)
    for table in ("alphas_cumprod", "sigmas"):  # same float32 values, computed on in ref_dtype
        if hasattr(ref, table):
            setattr(ref, table, getattr(ref, table).to(ref_dtype))
    assert ours.timesteps.dtype == np.int64
    np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy())
    assert ours.init_noise_sigma == pytest.approx(float(ref.init_noise_sigma), rel=1e-6)
    g = torch.Generator().manual_seed(seed)
    xr = torch.randn(SHAPE, generator=g)
    x = xr.numpy() * np.float32(ours.init_noise_sigma)
    xr = xr * ref.init_noise_sigma
    for t, tr in zip(ours.timesteps, ref.timesteps):
        out = fake_model(ours.scale_model_input(x, t), t, cfg)
        out_r = torch.from_numpy(fake_model(ref.scale_model_input(xr, tr).numpy(), tr, cfg)).to(ref_dtype)
        state = g.get_state()
        noise = torch.randn(SHAPE, generator=g, dtype=ref_dtype)  # DDPM draws in model_output's dtype
        if name in ("ddpm", "lcm"):  # diffusers' step draws its noise from g itself: let it draw this one
            g.set_state(state)
            kwargs = {"generator": g}
        else:
            kwargs = {"eta": eta, "variance_noise": noise} if name == "ddim" and eta else {}
        x = ours.step(out, t, x, noise.numpy() if ours.needs_noise else None).prev_sample
        xr = ref.step(out_r, tr, xr, **kwargs).prev_sample.float()
        assert x.dtype == np.float32
        assert_close(x, xr.numpy())
    return x, xr.numpy()


@pytest.mark.parametrize("steps", [1, 4, 20, 50])
@pytest.mark.parametrize("prediction_type", PREDICTIONS)
@pytest.mark.parametrize("beta_schedule", BETAS)
@pytest.mark.parametrize("name", SCHEDULERS)
def test_matches_diffusers(name, beta_schedule, prediction_type, steps):
    x, xr = sample_both(name, config(beta_schedule, prediction_type), steps)
    assert np.abs(x - xr).max() <= 1e-5
    assert 0.1 < np.abs(x).max() < 5  # an image-scale result, neither trivial nor blown up


@pytest.mark.parametrize("sd", [False, True], ids=["bundle", "sd"])
@pytest.mark.parametrize("prediction_type", PREDICTIONS)
@pytest.mark.parametrize("name", SCHEDULERS)
def test_matches_diffusers_float32(name, prediction_type, sd):
    """The plain float32 diffusers pipeline, where it is well-conditioned (20 steps, linear betas or SD's
    config)."""
    cfg = {**SD15, "prediction_type": prediction_type} if sd else config("linear", prediction_type)
    x, xr = sample_both(name, cfg, 20, eta=0.0, ref_dtype=torch.float32)
    assert_close(x, xr)


@pytest.mark.parametrize("eta", [0.5, 1.0])
@pytest.mark.parametrize("prediction_type", PREDICTIONS)
def test_ddim_eta_matches_diffusers(eta, prediction_type):
    for cfg in (config(prediction_type=prediction_type), {**SD15, "prediction_type": prediction_type}):
        for steps in (4, 20):
            x, xr = sample_both("ddim", cfg, steps, eta=eta)
            assert np.abs(x - xr).max() <= 1e-5


@pytest.mark.parametrize("name, spacing, steps", [
    *[(n, "leading", s) for n in SPACED for s in (4, 20)],
    ("ddpm", "linspace", 4), ("ddpm", "linspace", 20), ("dpm++", "linspace", 4), ("dpm++", "linspace", 20),
    ("euler", "linspace", 4),  # 999 / 3 is whole; other counts are fractional there, see below
    ("ddim", "linspace", 1),   # diffusers' DDIM steps to t - T // steps, not the next "linspace" step
])
def test_other_spacings_match_diffusers(name, spacing, steps):
    for beta_schedule in BETAS:
        x, xr = sample_both(name, config(beta_schedule, "v_prediction", spacing), steps)
        assert np.abs(x - xr).max() <= 1e-5


@pytest.mark.parametrize("name, steps", [*[(n, s) for n in SPACED for s in (1, 4, 20, 50)],
                                         *[("lcm", s) for s in (1, 4, 8, 50)]])
@pytest.mark.parametrize("prediction_type", PREDICTIONS)
def test_sd_config_matches_diffusers(name, steps, prediction_type):
    """Stable Diffusion's scheduler_config.json (v_prediction: SD 2.x 768) as XScheduler.from_config
    reads it: scaled_linear betas, "leading" spacing with steps_offset 1, no clipping, DDIM ending at
    alpha_bar_0 (set_alpha_to_one false), and PNDM's skip_prk_steps and _class_name ignored."""
    x, xr = sample_both(name, {**SD15, "prediction_type": prediction_type}, steps)
    assert np.abs(x - xr).max() <= 1e-5
    assert 0.1 < np.abs(x).max() < 5


@pytest.mark.parametrize("set_alpha_to_one", [True, False])
@pytest.mark.parametrize("name", SPACED)
def test_steps_offset_and_set_alpha_to_one_match_diffusers(name, set_alpha_to_one):
    """On a bundle's schedule; set_alpha_to_one matters to DDIM only (diffusers' DDPM always ends at
    alpha_bar = 1, and the sigma schedulers at sigma = 0)."""
    for spacing, offset, steps in (("leading", 1, 4), ("leading", 3, 20), ("trailing", 0, 4), ("trailing", 0, 20)):
        # as a scheduler_config.json (see reference): DDPMScheduler would refuse set_alpha_to_one
        cfg = {"_class_name": "DDIMScheduler", **config(prediction_type="v_prediction", timestep_spacing=spacing),
               "steps_offset": offset, "set_alpha_to_one": set_alpha_to_one}
        x, xr = sample_both(name, cfg, steps)
        assert np.abs(x - xr).max() <= 1e-5


@pytest.mark.parametrize("original_inference_steps", [50, 30, 8, 1000])
def test_lcm_timesteps_match_diffusers(original_inference_steps):
    """LCM's skipping schedule on its distillation grid, at every step count diffusers accepts; and a
    short sampling loop with a non-default timestep_scaling."""
    cfg = {**SD15, "_class_name": "LCMScheduler", "original_inference_steps": original_inference_steps}
    ours, ref = make_scheduler("lcm", cfg), reference("lcm", cfg)
    for steps in [s for s in (*range(1, 51), 64, 333, 999, 1000) if s <= original_inference_steps]:
        ref.set_timesteps(steps)
        ours.set_timesteps(steps)
        assert ours.timesteps.dtype == np.int64
        np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy(), err_msg=f"{steps} steps")
    with pytest.raises(ValueError):
        ref.set_timesteps(original_inference_steps + 1)
    with pytest.raises(ValueError, match="original_inference_steps"):
        ours.set_timesteps(original_inference_steps + 1)
    x, xr = sample_both("lcm", {**cfg, "timestep_scaling": 4.0}, min(4, original_inference_steps))
    assert np.abs(x - xr).max() <= 1e-5


@pytest.mark.parametrize("spacing, steps_offset", [
    ("trailing", 0), ("leading", 0), ("linspace", 0),
    ("leading", 1), ("leading", 7), ("trailing", 1), ("linspace", 1),  # diffusers offsets "leading" only
])
@pytest.mark.parametrize("name", SPACED)
def test_timesteps_match_diffusers(name, spacing, steps_offset):
    cfg = config(timestep_spacing=spacing, steps_offset=steps_offset)
    ours, ref = make_scheduler(name, cfg), reference(name, cfg)
    for steps in [*range(1, 21), 27, 33, 50, 64, 100, 333, 999, 1000]:
        ref.set_timesteps(steps)
        expected = ref.timesteps.numpy()
        if name == "euler" and spacing == "linspace":  # deliberate: ours stays integer, rounded as DDPM's
            ref_ddpm = reference("ddpm", cfg)
            ref_ddpm.set_timesteps(steps)
            np.testing.assert_allclose(ref_ddpm.timesteps.numpy(), expected, atol=0.5)
            expected = ref_ddpm.timesteps.numpy()
        try:
            ours.set_timesteps(steps)
        except ValueError:  # refused only where diffusers' own schedule repeats a timestep or passes T - 1
            assert len(np.unique(expected)) < steps or expected.max() > 999
            continue
        np.testing.assert_array_equal(ours.timesteps, expected, err_msg=f"{steps} steps")


def test_alphas_cumprod_is_diffusers_float32_schedule():
    for beta_schedule in BETAS:
        ours = make_scheduler("ddpm", config(beta_schedule)).alphas_cumprod
        np.testing.assert_allclose(ours, alpha_bar(beta_schedule), rtol=1e-6)
    ours = make_scheduler("ddpm", SD15).alphas_cumprod
    np.testing.assert_allclose(ours, reference("ddpm", SD15).alphas_cumprod.double().numpy(), rtol=1e-6)


# --- the papers' update rules, written out independently -------------------------------------------


@pytest.mark.parametrize("steps, spacing", [(7, "trailing"), (20, "linspace")])
def test_ddim_eta0_is_song_eq12(steps, spacing):
    """x_prev = sqrt(a_prev) (x - sqrt(1-a) eps) / sqrt(a) + sqrt(1 - a_prev) eps, stepping to the next
    timestep of the schedule (and a_prev = 1 after the last). At these step counts diffusers' DDIM
    steps to t - 1000 // steps instead, which is not the next timestep: here we follow the paper."""
    cfg = config(timestep_spacing=spacing, clip_sample=False)
    s = make_scheduler("ddim", cfg)
    s.set_timesteps(steps)
    ab = alpha_bar("linear")
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    for i, t in enumerate(s.timesteps):
        eps = fake_model(x, t, cfg).astype(np.float64)
        a, a_prev = ab[t], ab[s.timesteps[i + 1]] if i + 1 < steps else 1.0
        expected = math.sqrt(a_prev) * (x - math.sqrt(1 - a) * eps) / math.sqrt(a) + math.sqrt(1 - a_prev) * eps
        x = s.step(eps.astype(np.float32), t, x).prev_sample
        np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


def test_ddim_eta1_is_ddpm():
    """With eta = 1 DDIM's std is the DDPM posterior std and, unclipped, its mean the posterior mean."""
    cfg = config(prediction_type="v_prediction", clip_sample=False)
    ddim, ddpm = make_scheduler("ddim", cfg, eta=1.0), make_scheduler("ddpm", cfg)
    rng = np.random.default_rng(2)
    for s in (ddim, ddpm):
        s.set_timesteps(10)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    for t in ddim.timesteps:
        out, noise = fake_model(x, t, cfg), rng.standard_normal(SHAPE)
        x_ddim, x = ddim.step(out, t, x, noise).prev_sample, ddpm.step(out, t, x, noise).prev_sample
        np.testing.assert_allclose(x_ddim, x, rtol=1e-5, atol=1e-5)


def test_euler_step_is_karras_algorithm2():
    cfg = config(clip_sample=False)
    s = make_scheduler("euler", cfg)
    s.set_timesteps(20)
    ab = alpha_bar("linear")
    sigma = lambda t: math.sqrt((1 - ab[t]) / ab[t])  # noqa: E731
    x = (np.random.default_rng(3).standard_normal(SHAPE) * 5).astype(np.float32)
    t, t_next = s.timesteps[5], s.timesteps[6]
    assert s.init_noise_sigma == pytest.approx(sigma(s.timesteps[0]), rel=1e-6)
    model_in = s.scale_model_input(x, t)
    np.testing.assert_allclose(model_in, x / math.sqrt(sigma(t) ** 2 + 1), rtol=1e-6)
    eps = fake_model(model_in, t, cfg)
    x0 = x - sigma(t) * eps
    expected = x + (x - x0) / sigma(t) * (sigma(t_next) - sigma(t))
    np.testing.assert_allclose(s.step(eps, t, x).prev_sample, expected, rtol=1e-5, atol=1e-5)
    last = s.timesteps[-1]  # the final step lands on sigma = 0, i.e. on x0_hat
    np.testing.assert_allclose(s.step(eps, last, x).prev_sample, x - sigma(last) * eps, rtol=1e-5, atol=1e-5)


def test_dpmpp_2m_is_lu_algorithm2():
    """DPM-Solver++(2M) in log-SNR form: h_i = lambda_i - lambda_{i-1}, r = h_{i-1} / h_i,
    D = (1 + 1/2r) x0_i - 1/2r x0_{i-1}, x_i = sigma_i / sigma_{i-1} x - alpha_i (e^-h_i - 1) D;
    first order on the first step and on the last one, which goes to sigma = 0 (x = x0_hat)."""
    cfg = config("squaredcos_cap_v2", clip_sample=False)
    s = make_scheduler("dpm++", cfg)
    s.set_timesteps(10)
    ab = alpha_bar("squaredcos_cap_v2")
    alpha, sig = np.sqrt(ab[s.timesteps]), np.sqrt(1 - ab[s.timesteps])
    lam = np.log(alpha / sig)
    x = np.random.default_rng(4).standard_normal(SHAPE).astype(np.float32)
    prev_x0 = None
    for i, t in enumerate(s.timesteps):
        eps = fake_model(x, t, cfg)
        x0 = (x - sig[i] * eps.astype(np.float64)) / alpha[i]
        if i == len(s.timesteps) - 1:
            expected = x0
        else:
            h = lam[i + 1] - lam[i]
            d = x0 if prev_x0 is None else x0 + (x0 - prev_x0) / (2 * (lam[i] - lam[i - 1]) / h)
            expected = sig[i + 1] / sig[i] * x - alpha[i + 1] * (math.exp(-h) - 1) * d
        prev_x0 = x0
        x = s.step(eps, t, x).prev_sample
        np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


def test_lcm_is_consistency_sampling():
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1) with LCM's boundary condition as
    diffusers writes it: f(x, t) = c_skip x + c_out x0_hat, c_skip = s^2 / ((10 t)^2 + s^2),
    c_out = 10 t / sqrt((10 t)^2 + s^2), s = 0.5; then x_next = sqrt(a_next) f + sqrt(1 - a_next) z
    with fresh noise z, but after the last step x = f."""
    s = make_scheduler("lcm", SD15)
    s.set_timesteps(4)
    np.testing.assert_array_equal(s.timesteps, [999, 759, 499, 259])  # 4 of the grid 999, 979, ..., 19
    ab = alpha_bar("scaled_linear", 0.00085, 0.012)
    rng = np.random.default_rng(6)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    for i, t in enumerate(s.timesteps):
        eps, z = fake_model(x, t, SD15), rng.standard_normal(SHAPE)
        x0 = (x - math.sqrt(1 - ab[t]) * eps.astype(np.float64)) / math.sqrt(ab[t])
        c = 10.0 * t
        f = 0.25 / (c * c + 0.25) * x + c / math.sqrt(c * c + 0.25) * x0
        if i + 1 < len(s.timesteps):
            a_next = ab[s.timesteps[i + 1]]
            expected = math.sqrt(a_next) * f + math.sqrt(1 - a_next) * z
        else:
            expected = f
        x = s.step(eps, t, x, z).prev_sample
        np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


# --- state, dtypes, errors, deployability ----------------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULERS)
def test_reusable_across_set_timesteps(name):
    def run(s, steps=None):
        if steps:
            s.set_timesteps(steps)
        rng = np.random.default_rng(5)
        x = (rng.standard_normal(SHAPE) * s.init_noise_sigma).astype(np.float32)
        for t in s.timesteps:
            noise = rng.standard_normal(SHAPE) if s.needs_noise else None
            x = s.step(fake_model(s.scale_model_input(x, t), t, cfg), t, x, noise).prev_sample
        return x

    cfg = config(prediction_type="v_prediction")
    fresh = run(make_scheduler(name, cfg), 6)
    reused = make_scheduler(name, cfg)
    run(reused, 20)
    np.testing.assert_array_equal(run(reused, 6), fresh)
    np.testing.assert_array_equal(run(reused), fresh)  # a second loop without set_timesteps starts fresh too


def test_dtype_follows_input():
    s = make_scheduler("dpm++", config())
    s.set_timesteps(4)
    x = np.zeros(SHAPE, np.float64)
    assert s.step(fake_model(x, 999, config()), s.timesteps[0], x).prev_sample.dtype == np.float64


def test_errors():
    with pytest.raises(ValueError, match=r"'heun'.*ddpm, ddim, dpm\+\+, euler"):
        make_scheduler("heun", config())
    s = make_scheduler("ddpm", config())
    x = np.zeros(SHAPE, np.float32)
    with pytest.raises(ValueError, match="set_timesteps"):
        s.step(x, 999, x, x).prev_sample
    for bad in (0, -1, 1001, 2.5):
        with pytest.raises(ValueError, match="steps must be"):
            s.set_timesteps(bad)
    s.set_timesteps(4)
    with pytest.raises(ValueError, match="needs noise"):
        s.step(x, s.timesteps[0], x).prev_sample
    with pytest.raises(ValueError, match="not in the schedule"):
        s.step(x, 998, x, x).prev_sample
    with pytest.raises(ValueError, match="shape"):
        s.step(x, s.timesteps[0], x, np.zeros(3)).prev_sample
    ddim = make_scheduler("ddim", config(), eta=0.5)
    ddim.set_timesteps(4)
    assert ddim.needs_noise and not make_scheduler("ddim", config()).needs_noise
    with pytest.raises(ValueError, match="needs noise"):
        ddim.step(x, ddim.timesteps[0], x).prev_sample
    with pytest.raises(ValueError, match="beta_schedule"):
        make_scheduler("euler", config("sigmoid"))
    with pytest.raises(ValueError, match="thresholding"):
        make_scheduler("ddim", config(thresholding=True))
    with pytest.raises(ValueError, match="trained_betas"):
        make_scheduler("ddpm", {**SD15, "trained_betas": [1e-3] * 1000})
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="steps_offset must be"):
            make_scheduler("ddim", config(steps_offset=bad))
    sd = make_scheduler("euler", SD15)
    sd.set_timesteps(999)
    with pytest.raises(ValueError, match="steps_offset 1 moves .* to 1000"):
        sd.set_timesteps(1000)
    for key, bad in (("original_inference_steps", 0), ("original_inference_steps", 1001), ("timestep_scaling", 0)):
        with pytest.raises(ValueError, match=key):
            make_scheduler("lcm", {**SD15, key: bad})
    lcm = make_scheduler("lcm", SD15)
    with pytest.raises(ValueError, match=r"steps must be an integer from 1 to original_inference_steps \(50\)"):
        lcm.set_timesteps(51)
    lcm.set_timesteps(2)
    with pytest.raises(ValueError, match="needs noise"):
        lcm.step(x, lcm.timesteps[0], x).prev_sample
    assert lcm.step(x, lcm.timesteps[1], x).prev_sample.shape == SHAPE  # the last step draws none


def test_imports_no_torch():
    code = ("import sys, gen.runtime.schedulers; "
            "assert not {'torch', 'diffusers'} & set(sys.modules), 'torch or diffusers imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
