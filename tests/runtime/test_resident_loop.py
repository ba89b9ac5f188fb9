"""The device-resident denoising loops, on the CPU: ORT's (gen.runtime.backends.ort_loop, OrtValues
by IO binding) and eager / compile's (gen.runtime.backends.torch_loop, tensors). The same images and
previews as the host loop, bit for bit; the networks never called through the host path; the
shipped step graphs what gen.runtime.graphs builds."""

import numpy as np
import pytest

from gen.errors import GenError
from gen.runtime.backends.eager import EagerBackend
from gen.runtime.backends.ort import OrtBackend
from gen.runtime.graphs import NAMES, build, graph_path
from gen.runtime.sampler import Sampler

CASES = {  # bundle fixture name -> generate() arguments: every scheduler, guidance both ways round
    "ddim": ("ddpm", {"steps": 6, "scheduler": "ddim"}),
    "ddim-eta": ("ddpm", {"steps": 6, "scheduler": "ddim", "eta": 0.7}),
    "ddpm": ("ddpm", {"steps": 6, "scheduler": "ddpm"}),
    "dpm++": ("ddpm", {"steps": 6, "scheduler": "dpm++"}),
    "euler": ("ddpm", {"steps": 6, "scheduler": "euler"}),
    "lcm": ("ddpm", {"steps": 3, "scheduler": "lcm"}),
    "cfg-labels": ("cddpm", {"steps": 5, "labels": [3, 1, 4], "guidance": 2.5}),
    "student": ("cd-student", {"steps": 2}),
}


def both_loops(bundle, arguments, n=3, backend="ort"):
    """(images, previews) with the resident loop, then with the host loop, from one Sampler."""
    results = []
    with Sampler(bundle, backend=backend, threads=2) as s:
        for resident in (True, False):
            s.backend.resident_loop = resident
            previews = []
            images = s.generate(n=n, seed=7, on_step=lambda i, steps, x0: previews.append(np.array(x0)), **arguments)
            results.append((images, previews))
    return results


@pytest.mark.parametrize("backend", ["ort", "eager"])
@pytest.mark.parametrize("case", CASES)
def test_resident_loop_matches_the_host_loop(bundles, case, backend):
    fixture, arguments = CASES[case]
    (images, previews), (host_images, host_previews) = both_loops(bundles[fixture], arguments, backend=backend)
    # the step runs in float64 with the numpy step's terms in its order (one function, or the step
    # graph that mirrors it): the same bits
    np.testing.assert_array_equal(images, host_images)
    assert np.abs(images).max() > 0.5  # real images, not zeros
    assert len(previews) == len(host_previews) == arguments["steps"]
    for preview, host_preview in zip(previews, host_previews):  # ORT's in float32, the others' in float64
        np.testing.assert_array_equal(preview.astype(np.float32), host_preview.astype(np.float32))


def test_text_to_image_with_guidance_and_img2img(sd_bundle):
    for arguments in ({"prompt": ["a red cube", "a cat"], "steps": 3, "guidance": 5.0},
                      {"prompt": "a cat", "steps": 4, "scheduler": "euler",
                       "image": np.full((64, 64, 3), 90, np.uint8), "strength": 0.6}):
        for backend in ("ort", "eager"):
            (images, _), (host_images, _) = both_loops(sd_bundle, arguments, n=1, backend=backend)
            np.testing.assert_array_equal(images, host_images)


@pytest.mark.parametrize("backend", ["ort", "eager", "compile"])
def test_the_network_runs_only_inside_the_resident_loop(bundles, monkeypatch, backend, capfd):
    """No step goes through the host path (Backend.outputs -> _run), and each is still counted."""
    monkeypatch.setenv("GEN_COMPILE_BACKEND", "aot_eager")  # dynamo's capture without inductor's C++ build
    host_calls = []
    cls = OrtBackend if backend == "ort" else EagerBackend
    original = cls._run
    monkeypatch.setattr(cls, "_run", lambda self, c, feeds: host_calls.append(c) or original(self, c, feeds))
    with Sampler(bundles["cddpm"], backend=backend, threads=2) as s:
        resident = s.generate(n=2, steps=4, labels=[0, 1])
        assert host_calls == [] and s.backend.component_calls == {"denoiser": 4}
        assert s.last_timing["network_s"] > 0
        s.backend.resident_loop = False
        np.testing.assert_array_equal(resident, s.generate(n=2, steps=4, labels=[0, 1]))
        assert host_calls == ["denoiser"] * 4
    if backend == "compile":  # the first call of a shape says it compiles, in either loop
        assert capfd.readouterr().err.count("compiling denoiser for shapes") == 1


def test_classifier_guidance_steps_on_the_host(bundles):
    """A step that needs host code (the classifier's gradient) keeps the host loop, and its images."""
    with Sampler(bundles["ddpm-guided"], backend="ort", threads=2) as s:
        guided = s.generate(n=2, steps=4, labels=[1, 2], classifier_scale=2.0)
        s.backend.resident_loop = False
        np.testing.assert_array_equal(guided, s.generate(n=2, steps=4, labels=[1, 2], classifier_scale=2.0))


def test_a_scheduler_with_its_own_step_steps_on_the_host(bundles, monkeypatch):
    """A scheduler that overrides step() is not described by its coefficients: the resident loop
    would silently skip its step, so denoise keeps the host loop for it."""
    from gen.runtime.denoise import DenoiserCall, denoise
    from gen.runtime.schedulers import DDIM, make_scheduler

    class Halving(DDIM):
        def step(self, model_output, t, x, noise=None):
            out = super().step(model_output, t, x, noise)
            return out._replace(prev_sample=out.prev_sample / 2)

    host_calls = []
    original = OrtBackend._run
    monkeypatch.setattr(OrtBackend, "_run", lambda self, c, feeds: host_calls.append(c) or original(self, c, feeds))
    with Sampler(bundles["ddpm"], backend="ort", threads=2) as s:
        config = s.bundle.sampling.scheduler_config
        custom, plain = Halving(config), make_scheduler("ddim", config)
        assert plain.linear_steps and not custom.linear_steps
        x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
        for sched in (custom, plain):
            sched.set_timesteps(3)
        halved = denoise(custom, x, None, s.backend, DenoiserCall("denoiser", np.int64))
        assert host_calls == ["denoiser"] * 3
        assert not np.allclose(halved, denoise(plain, x, None, s.backend, DenoiserCall("denoiser", np.int64)))
        assert host_calls == ["denoiser"] * 3  # the plain DDIM ran in the resident loop


@pytest.mark.parametrize("backend", ["ort", "eager"])
def test_a_scheduler_that_adds_noise_it_does_not_ask_for_is_refused(bundles, backend):
    """The host step refuses a missing noise draw; the resident loops must not add zeros instead."""
    from gen.runtime.denoise import DenoiserCall, denoise
    from gen.runtime.schedulers import DDIM

    with Sampler(bundles["ddpm"], backend=backend, threads=2) as s:
        sched = DDIM(s.bundle.sampling.scheduler_config, eta=0.5)
        sched.needs_noise = False
        sched.set_timesteps(3)
        x = np.zeros((1, 1, 8, 8), np.float32)
        with pytest.raises(GenError, match="adds noise but says needs_noise=False"):
            denoise(sched, x, np.random.default_rng(0), s.backend, DenoiserCall("denoiser", np.int64))


def test_bad_first_input_and_non_finite_results_are_refused(bundles, monkeypatch):
    from gen.runtime.schedulers import DDIM

    with Sampler(bundles["ddpm"], backend="ort", threads=2) as s:
        original = DDIM.coefficients
        monkeypatch.setattr(DDIM, "coefficients", lambda self, i, history=False: original(self, i, history)._replace(next_x=np.inf))
        with pytest.raises(GenError, match="denoiser produced NaN or infinite values"):
            s.generate(n=1, steps=3, scheduler="ddim")
    closed = Sampler(bundles["ddpm"], backend="ort", threads=2)
    closed.close()
    with pytest.raises(GenError, match="closed"):
        closed.backend.denoise_resident(None, None, None, None, None, True, None)


def test_shipped_graphs_are_what_build_writes():
    for name in NAMES:
        assert graph_path(name).read_bytes() == build(name), f"{name}.onnx is stale: rewrite it with write_all()"
