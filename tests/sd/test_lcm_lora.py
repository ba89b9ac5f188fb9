"""`gen distill lcm-lora` on tiny-sd: the distillation measurably works, its LoRA is plain diffusers,
export recognises LCM-LoRAs (gen's and diffusers-format ones), and bad input writes nothing."""

import json
import os
import shutil
import subprocess
import sys

import diffusers.schedulers.scheduling_lcm as diffusers_lcm
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, LCMScheduler

from gen.errors import GenError
from gen.export.sd_export import export_sd
from gen.recipes.lcm import recognise
from gen.recipes.registry import load_pipeline
from gen.recipes.tiny_sd import build_tiny_sd
from gen.runtime.sampler import Sampler
from gen.trainkit.sd.lcm_lora import distill_lcm_lora
from gen.trainkit.sd.base import sample
from tests.sd.test_lora import captioned_folder
from tests.cli.test_cli import gen_here

PROMPTS = [f"a handwritten digit {k}" for k in (0, 1, 2, 3)]  # the captions of captioned_folder's first images
QUIET = {"progress": lambda *_: None}
STEPS = 30  # optimisation steps, a few seconds on one thread; the measurement holds from 20 on (seeds 0-2)


@pytest.fixture(scope="module")
def lcm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lcm")
    data = captioned_folder(root / "data")
    run, check = distill_lcm_lora(None, str(data), str(root / "run"), {"steps": STEPS}, progress=False)
    return run, check, data


@pytest.fixture(scope="module")
def lcm_bundle(lcm_run, tmp_path_factory):
    run, _, _ = lcm_run
    return export_sd("sd-lora", str(tmp_path_factory.mktemp("lcm-bundle") / "b"), lora=str(run.path), **QUIET)


def images(pipe, scheduler, steps, guidance):
    return sample(pipe, PROMPTS, 0, 64, steps, scheduler=scheduler, guidance=guidance)  # seed 0 as the run's


def test_run_files_and_plain_diffusers_loads_the_lora(lcm_run):
    run, check, _ = lcm_run
    for name in ("config.json", "lora.safetensors", "metrics.jsonl", "samples.png"):
        assert (run.path / name).is_file(), name
    config = json.loads((run.path / "config.json").read_text())
    assert config["family"] == "lcm-lora" and config["base"] == "tiny-sd" and config["skip"] == 20
    assert config["original_inference_steps"] == 50 and config["timestep_scaling"] == 10.0
    assert run.metrics()[-1]["mse_student"] == check["mse_student"]
    pipe = build_tiny_sd()
    pipe.load_lora_weights(str(run.path), weight_name="lora.safetensors")
    assert any(pipe.get_list_adapters().values())


def test_student_at_4_steps_is_closer_to_the_teacher_at_50_than_the_teacher_at_4(lcm_run):
    """Measured afresh from the saved file (plain diffusers, not the trainer's own check)."""
    run, check, _ = lcm_run
    w = json.loads((run.path / "config.json").read_text())["guidance"]
    teacher = build_tiny_sd()
    ddim = DDIMScheduler.from_config(teacher.scheduler.config)
    ref = images(teacher, ddim, 50, w)
    teacher_4 = images(teacher, ddim, 4, w)
    student = build_tiny_sd()
    student.load_lora_weights(str(run.path), weight_name="lora.safetensors")
    lcm = LCMScheduler.from_config(teacher.scheduler.config)
    student_4 = images(student, lcm, 4, 1.0)
    base_4 = images(teacher, lcm, 4, 1.0)
    mse = {k: float(np.mean((v - ref) ** 2)) for k, v in
           (("student", student_4), ("teacher_few_steps", teacher_4), ("base_lcm", base_4))}
    print("image MSE to the teacher at 50 steps:", mse)
    assert mse["student"] < mse["teacher_few_steps"]
    assert mse["student"] < mse["base_lcm"]  # what the training added, beyond the LCM scheduler itself
    for key, value in mse.items():
        assert value == pytest.approx(check[f"mse_{key}"], abs=2e-4), key


class ReplayedNoiseLCM(LCMScheduler):
    """diffusers' own LCM step, re-noising with the noise gen's host draws (one array per step)."""

    noises: list = []

    def step(self, *args, **kwargs):
        noise = torch.from_numpy(self.noises.pop(0))
        draw, diffusers_lcm.randn_tensor = diffusers_lcm.randn_tensor, lambda *a, **k: noise
        try:
            return super().step(*args, **kwargs)
        finally:
            diffusers_lcm.randn_tensor = draw


def test_export_defaults_to_lcm_and_matches_diffusers(lcm_run, lcm_bundle):
    run, _, _ = lcm_run
    m = json.loads((lcm_bundle / "gen.json").read_text())
    s = m["sampling"]
    assert (s["default_scheduler"], s["default_steps"], s["guidance"]) == ("lcm", 4, 1.0)
    assert s["scheduler_config"]["original_inference_steps"] == 50 and s["scheduler_config"]["timestep_scaling"] == 10.0
    assert m["source"]["lora"]["kind"] == "lcm-lora"

    sampler = Sampler(str(lcm_bundle))
    sampler.generate("a prompt")  # the bundle's defaults, no arguments
    assert sampler.backend.component_calls["unet"] == 4  # 4 steps, one pass each (guidance 1: no CFG pass)

    seed = 5
    rng = np.random.default_rng(seed)  # gen's host noise: initial latents, then one draw per step
    latents = rng.standard_normal((len(PROMPTS), 4, 8, 8), dtype=np.float32)
    pipe = build_tiny_sd()
    pipe.load_lora_weights(str(run.path), weight_name="lora.safetensors")  # not fused
    pipe.scheduler = ReplayedNoiseLCM.from_config(pipe.scheduler.config)
    ReplayedNoiseLCM.noises = [rng.standard_normal(latents.shape, dtype=np.float32) for _ in range(4)]
    with torch.no_grad():
        ref = pipe(PROMPTS, num_inference_steps=4, guidance_scale=1.0, latents=torch.from_numpy(latents),
                   output_type="np").images.transpose(0, 3, 1, 2) * 2 - 1
    for backend in ("ort", "eager"):
        ours = Sampler(str(lcm_bundle), backend=backend).generate(PROMPTS, seed=seed)
        assert np.abs(ours - ref).max() <= 1e-3, backend


def test_a_diffusers_format_lcm_lora_folder_is_recognised(lcm_run, tmp_path):
    run, _, _ = lcm_run
    hub = tmp_path / "lcm-lora-sdv1-5"  # latent-consistency's layout
    hub.mkdir()
    shutil.copy(run.path / "lora.safetensors", hub / "pytorch_lora_weights.safetensors")
    (hub / "README.md").write_text("---\nlibrary_name: diffusers\ntags: [lcm, lora]\n---\n# LCM-LoRA\n")
    resolved = load_pipeline("sd-lora", lora=str(hub), **QUIET)
    assert resolved.lcm["original_inference_steps"] == 50 and "README.md" in resolved.lcm["recognised_by"]
    assert resolved.lora.endswith("pytorch_lora_weights.safetensors")


def test_the_recognition_rule(tmp_path):
    plain = tmp_path / "pets"
    plain.mkdir()
    (plain / "pytorch_lora_weights.safetensors").write_bytes(b"")
    assert recognise(str(plain), {}) is None and recognise(None, {}) is None
    (plain / "README.md").write_text("---\ntags:\n- lora\n- text-to-image\n---\n")
    assert recognise(str(plain), {}) is None
    (plain / "README.md").write_text("---\ntags:\n- LCM\n- lora\n---\n")  # the block form, any case
    assert "README.md" in recognise(str(plain), {})["recognised_by"]
    named = tmp_path / "loras" / "lcm-lora-sdv1-5.safetensors"  # the renamed download
    named.parent.mkdir()
    named.write_bytes(b"")
    assert recognise(str(named), {})["timestep_scaling"] == 10.0
    assert recognise(str(tmp_path / "pets"), {"family": "sd-lora"}) is not None  # the card still says lcm
    with pytest.raises(GenError, match="lacks original_inference_steps"):
        recognise(str(plain), {"family": "lcm-lora"})
    (plain / "README.md").write_text("---\ntags: [lcm\n---\n")
    with pytest.raises(GenError, match="cannot be read"):
        recognise(str(plain), {})


def test_a_plain_lora_keeps_the_old_defaults(sd_bundle):
    assert load_pipeline("sd-lora", **QUIET).lcm is None  # the seeded demo LoRA
    s = json.loads((sd_bundle / "gen.json").read_text())["sampling"]
    assert (s["default_scheduler"], s["default_steps"], s["guidance"]) == ("dpm++", 20, 7.5)
    assert "original_inference_steps" not in s["scheduler_config"]


@pytest.mark.parametrize("options,message", [
    ({"skip": 30}, "--skip 30 must divide the base's 1000 training timesteps"),
    ({"steps": 0}, "--steps must be a positive integer"),
    ({"rank": -1}, "--rank must be a positive integer"),
    ({"guidance": 0.5}, "--guidance must be >= 1"),
    ({"data": "missing"}, "--data .*missing: folder not found"),
])
def test_bad_input_is_refused_and_nothing_is_written(lcm_run, tmp_path, options, message):
    _, _, data = lcm_run
    options = dict(options)
    data = str(tmp_path / options.pop("data")) if "data" in options else str(data)
    with pytest.raises(GenError, match=message):
        distill_lcm_lora(None, data, str(tmp_path / "out"), options, progress=False)
    assert not list(tmp_path.iterdir())


def test_the_cli_refuses_by_option_name_and_writes_nothing(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "gen", "distill", "lcm-lora"]
    p = gen_here("distill", "lcm-lora", "--steps", "0", "--out", tmp_path / "out", "--quiet", check=False)
    assert p.returncode == 2 and "--steps must be from 1 to 10000000, got 0" in p.stderr, p.stderr
    assert not list(tmp_path.iterdir())
    p = subprocess.run([*command, "--help"], capture_output=True, text=True, env={**env, "COLUMNS": "200"})
    assert "--skip" in p.stdout and "--guidance" in p.stdout and "gen export --model sd-lora" in p.stdout


def test_an_lcm_lora_on_a_base_it_does_not_fit_is_refused(lcm_run, tmp_path):
    run, _, _ = lcm_run
    pipe = build_tiny_sd()  # the same pipeline with a narrower UNet: the LoRA's shapes do not fit it
    narrow = type(pipe.unet).from_config({**pipe.unet.config, "block_out_channels": (16, 32)})
    other = type(pipe)(**{**pipe.components, "unet": narrow})
    other.save_pretrained(str(tmp_path / "narrow"), safe_serialization=True)
    with pytest.raises(GenError, match="does not fit this base model"):
        export_sd("sd-lora", str(tmp_path / "b"), base=str(tmp_path / "narrow"), lora=str(run.path), **QUIET)
    assert not (tmp_path / "b").exists()
    moved = tmp_path / "other-schedule"  # a run distilled on another noise schedule
    shutil.copytree(run.path, moved)
    config = json.loads((moved / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**config, "num_train_timesteps": 500}))
    with pytest.raises(GenError, match="distilled on 500 training timesteps.*does not fit"):
        export_sd("sd-lora", str(tmp_path / "b"), lora=str(moved), **QUIET)
    assert not (tmp_path / "b").exists()
