"""`gen distill lcm-lora`: latent consistency distillation of a Stable Diffusion base into a LoRA
(LCM-LoRA, Luo et al. 2023), so that base + LoRA samples in 4 steps with the LCM scheduler.

The teacher is the base itself (the same UNet with its adapter disabled), with classifier-free
guidance against the empty prompt (u + w (c - u), diffusers' convention, w = --guidance): the
student learns the guided ODE and so samples with guidance 1, one UNet pass per step. Each step
draws t from the skip grid {k-1, 2k-1, .., T-1} (k = --skip; the LCM scheduler's
original_inference_steps is T / k), noises training latents to z_t, takes one DDIM step of the
guided teacher from t to t - k, and pulls the student's consistency function
f(z, t) = c_skip(t) z + c_out(t) x0(z, t) towards the student's own f (under no_grad: LCM-LoRA has
no target EMA) at the landing point; below t = 0 that is the landing point itself, f's boundary.
c_skip and c_out are diffusers' LCMScheduler's (sigma_data 0.5, timestep_scaling 10), as in
gen.trainkit.distill.consistency. The loss is pseudo-Huber per element, sqrt(d^2 + c^2) - c,
c = 0.001. Latents and text embeddings are computed once (gen.trainkit.sd.base).

    RUN/config.json        base, data, rank, hyper-parameters and the LCM settings, "family": "lcm-lora"
    RUN/lora.safetensors   the adapter, diffusers key names (load_lora_weights loads it)
    RUN/samples.png        rows: the teacher at 50 DDIM steps, the teacher at 4, the base at 4 LCM steps
                           and the student at 4 (LCM, guidance 1); the same prompts and initial noise
    RUN/metrics.jsonl      loss per logged step; last, the distillation check (distillation_check): each
                           4-step row's MSE to the 50-step row, the student's must be the smallest
"""

from __future__ import annotations

from contextlib import contextmanager

from gen.errors import GenError
from gen.nets.lora import TARGET_MODULES, add_lora, save_lora
from gen.recipes.lcm import LCM_FAMILY
from gen.trainkit.sd import SdRunKind

RUN_KIND = SdRunKind(LCM_FAMILY, "gen export --model sd-lora --lora RUN")  # how its runs are exported

# `gen distill lcm-lora`'s defaults; the CLI reads them from here
DEFAULTS = {"rank": 8, "steps": 300, "lr": 1e-3, "batch_size": 8, "skip": 20, "guidance": 7.5,
            "timestep_scaling": 10.0, "huber_c": 0.001, "seed": 0, "resolution": None, "max_images": None,
            "log_every": 10, "teacher_steps": 50, "student_steps": 4}
PREDICTIONS = ("epsilon", "v_prediction")
GRID = 4


def distill_lcm_lora(base: str | None, data: str, out: str, options: dict, force: bool = False,
                     progress: bool = True):
    """Distil into `out`, one writer at a time; returns (the run, the distillation check)."""
    from gen.trainkit.sd.base import run_output

    with run_output(out, "distill lcm-lora"):
        return _distill(base, data, out, options, force, progress)


def _distill(base, data, out, options, force, progress):
    from gen.fileio import write_json
    from gen.recipes.registry import LORA_FILE
    from gen.trainkit.rundir import RunDir
    from gen.trainkit.sd.base import check_options, encode, load_base, train_adapter, training_set

    config = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    check_options(config, ("rank", "steps", "batch_size", "skip", "teacher_steps", "student_steps"))
    if not config["guidance"] >= 1:
        raise GenError(f"--guidance must be >= 1 (1: no guidance to fold in), got {config['guidance']}")
    run = RunDir(out)
    run.check(resume=False, force=force, resumable=False, sources=(base, data))
    import torch  # after the checks that need no model, so those refusals are instant

    say = print if progress else (lambda *_: None)
    resolved = load_base(base, say)
    pipe = resolved.pipe
    T, prediction = int(pipe.scheduler.config.num_train_timesteps), pipe.scheduler.config.prediction_type
    if prediction not in PREDICTIONS:
        raise GenError(f"--base {resolved.base} predicts {prediction!r}; lcm-lora distils bases that predict "
                       f"{' or '.join(PREDICTIONS)} (every Stable Diffusion 1.x and 2.x)")
    if T % config["skip"] or config["skip"] >= T:
        raise GenError(f"--skip {config['skip']} must divide the base's {T} training timesteps into a grid of at "
                       f"least 2 points (e.g. 20: original_inference_steps {T // 20})")
    if config["student_steps"] > T // config["skip"]:
        raise GenError(f"--student-steps {config['student_steps']} exceeds the {T // config['skip']} timesteps "
                       f"of the skip grid (--skip {config['skip']})")
    size, images, captions = training_set(pipe, data, config["resolution"], config["max_images"])
    config.update(base=resolved.base, data=data, resolution=size, images=len(captions), family=LCM_FAMILY,
                  target_modules=TARGET_MODULES, num_train_timesteps=T, original_inference_steps=T // config["skip"],
                  prediction_type=prediction)
    final, run = run, run.claim(force)
    write_json(run.config_path, config)

    torch.manual_seed(config["seed"])
    latents, text, empty = encode(pipe, images, captions)
    unet = pipe.unet
    params = add_lora(unet, config["rank"])
    distiller = Distiller(unet, pipe.scheduler.config, config)
    def step_loss(g):
        idx = torch.randint(len(latents), (config["batch_size"],), generator=g)
        return distiller.loss(latents[idx], text[idx], empty, g)

    # gradient norm clipped at 1: diffusers' LCM scripts' max_grad_norm
    train_adapter(unet, params, config, step_loss, run, "distill lcm-lora", progress, clip_grad=1.0)
    save_lora(unet, run.path / LORA_FILE)
    check = distillation_check(pipe, list(dict.fromkeys(captions))[:GRID], config, run.path / "samples.png")
    run.log({"step": config["steps"], **check})
    final.commit(run)
    return final, check


class Distiller:
    """The LCM-LoRA loss on a UNet carrying one peft adapter (the student; disabled, the teacher)."""

    def __init__(self, unet, scheduler_config, config: dict):
        import torch
        from diffusers import DDPMScheduler

        self.unet, self.c = unet, config
        self.alphas = DDPMScheduler.from_config(scheduler_config).alphas_cumprod.float()
        self.v = scheduler_config["prediction_type"] == "v_prediction"
        self.starts = torch.arange(config["skip"] - 1, len(self.alphas), config["skip"])

    def loss(self, x0, cond, empty, g):
        import torch

        k, w = self.c["skip"], self.c["guidance"]
        t = self.starts[torch.randint(len(self.starts), (len(x0),), generator=g)]
        t_prev = (t - k).clamp(min=0)  # the first grid point steps to t = 0, f's boundary (c_skip 1, c_out 0)
        a_t, a_prev = self.alphas[t].view(-1, 1, 1, 1), self.alphas[t_prev].view(-1, 1, 1, 1)
        z = a_t.sqrt() * x0 + (1 - a_t).sqrt() * torch.randn(x0.shape, generator=g)
        with torch.no_grad():
            with teacher(self.unet):
                u, c = self.unet(torch.cat([z, z]), torch.cat([t, t]),
                                 torch.cat([empty.expand_as(cond), cond])).sample.chunk(2)
            x0_hat, eps_hat = self.x0_eps(u + w * (c - u), z, a_t)
            landing = a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps_hat  # DDIM, t -> t - k
            target = self.consistency(landing, t_prev, cond, a_prev)
        diff = self.consistency(z, t, cond, a_t) - target
        huber = self.c["huber_c"]
        return ((diff.pow(2) + huber**2).sqrt() - huber).mean()

    def consistency(self, z, t, cond, a):
        """f(z, t) = c_skip z + c_out x0_hat, with LCMScheduler's boundary scalings."""
        from gen.trainkit.distill.consistency import boundary_scalings

        x0_hat, _ = self.x0_eps(self.unet(z, t, cond).sample, z, a)
        c_skip, c_out = boundary_scalings(t, self.c["timestep_scaling"])
        return c_skip * z + c_out * x0_hat

    def x0_eps(self, out, z, a):
        """(x0, eps) from the UNet's output at z, alpha-bar `a`."""
        from gen.trainkit.distill.base import x0_eps

        return x0_eps(out, z, a.sqrt(), (1 - a).sqrt(), "v" if self.v else "epsilon")


@contextmanager
def teacher(unet):
    """The base model: the UNet with its LoRA switched off."""
    unet.disable_adapters()
    try:
        yield unet
    finally:
        unet.enable_adapters()


def distillation_check(pipe, prompts: list[str], config: dict, grid_path=None) -> dict:
    """Each few-step sampler's image MSE to the teacher at teacher_steps (50) DDIM steps, guided as
    distilled, from the same prompts and initial noise: the student at 4 LCM steps with guidance 1
    (mse_student), the teacher at 4 DDIM steps on its own schedule (mse_teacher_few_steps) and the
    base at 4 LCM steps (mse_base_lcm: the control that shows what training added). Distillation
    worked when mse_student is the smallest."""
    import numpy as np
    from diffusers import LCMScheduler

    from gen.trainkit.sd.base import sample, save_grid

    seed, size, w, few = config["seed"], config["resolution"], config["guidance"], config["student_steps"]
    lcm = LCMScheduler.from_config(pipe.scheduler.config, original_inference_steps=config["original_inference_steps"],
                                   timestep_scaling=config["timestep_scaling"])
    with teacher(pipe.unet):
        ref = sample(pipe, prompts, seed, size, config["teacher_steps"], guidance=w)
        short = sample(pipe, prompts, seed, size, few, guidance=w)
        base = sample(pipe, prompts, seed, size, few, scheduler=lcm, guidance=1.0)
    student = sample(pipe, prompts, seed, size, few, scheduler=lcm, guidance=1.0)
    if grid_path is not None:
        save_grid(grid_path, np.concatenate([ref, short, base, student]), len(prompts))
    def mse(images):
        return round(float(np.mean((images - ref) ** 2)), 6)

    return {"teacher_steps": config["teacher_steps"], "student_steps": few,
            "mse_student": mse(student), "mse_teacher_few_steps": mse(short), "mse_base_lcm": mse(base)}
