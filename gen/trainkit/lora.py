"""`gen train sd-lora`: LoRA fine-tuning of a Stable Diffusion UNet on captioned images.

peft adapters on the attention projections (to_q, to_k, to_v, to_out.0) of every UNet attention
block; everything else is frozen. Latents and text embeddings of the training set are computed once
(the VAE and text encoder are frozen), so each step is one UNet forward/backward. The LoRA is saved
in diffusers' format, so `pipe.load_lora_weights(run, weight_name="lora.safetensors")` loads it.

    RUN/config.json           base, data, rank and hyper-parameters (gen export reads the base from here)
    RUN/lora.safetensors      the adapter, diffusers key names
    RUN/samples_before.png    the base model's samples for the first captions, fixed seed
    RUN/samples_after.png     the same prompts and seed with the LoRA
    RUN/metrics.jsonl         loss per logged step
"""

from __future__ import annotations

import time

from gen.errors import GenError

from gen.nets.lora import TARGET_MODULES, add_lora, save_lora

# `gen train sd-lora`'s defaults; the CLI reads them from here
DEFAULTS = {"rank": 4, "steps": 200, "lr": 1e-3, "batch_size": 4, "seed": 0, "resolution": None,
            "sample_steps": 20, "log_every": 10, "max_images": None}
GRID = 4


def train_lora(base: str | None, data: str, out: str, options: dict, force: bool = False, progress: bool = True):
    """LoRA training into `out`, one writer at a time (a second one into the same --out fails at once)."""
    from gen.outputs import output_lock

    with output_lock(out):
        return _train_lora(base, data, out, options, force, progress)


def _train_lora(base, data, out, options, force, progress):
    import numpy as np
    import torch
    from diffusers import DDPMScheduler
    from tqdm import tqdm

    from gen.fileio import write_json
    from gen.recipes.registry import LORA_FILE, load_pipeline
    from gen.trainkit.captions import load_captioned
    from gen.trainkit.rundir import RunDir

    config = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    for key in ("rank", "steps", "batch_size"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise GenError(f"--{key.replace('_', '-')} must be a positive integer, got {config[key]!r}")
    if not config["lr"] > 0:
        raise GenError(f"--lr must be positive, got {config['lr']}")
    run = RunDir(out)
    run.check(resume=False, force=force)
    say = print if progress else (lambda *_: None)
    resolved = load_pipeline("sd", base) if base else load_pipeline("tiny-sd", progress=say)
    pipe = resolved.pipe
    vae_scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    size = config["resolution"] or pipe.unet.config.sample_size * vae_scale
    if size % 8:
        raise GenError(f"--resolution must be divisible by 8, got {size}")
    images, captions = load_captioned(data, size, config["max_images"])
    config.update(base=resolved.base, data=data, resolution=size, images=len(captions), family="sd-lora",
                  target_modules=TARGET_MODULES)
    final, run = run, run.claim(force)
    write_json(run.config_path, config)

    prompts = list(dict.fromkeys(captions))[:GRID]
    before = _samples(pipe, prompts, config)
    _save_grid(run.path / "samples_before.png", before)

    torch.manual_seed(config["seed"])
    with torch.no_grad():  # frozen encoders: encode the whole set once
        latents = torch.cat([pipe.vae.encode(torch.from_numpy(images[i:i + 16])).latent_dist.mode()
                             for i in range(0, len(images), 16)]) * pipe.vae.config.scaling_factor
        ids = pipe.tokenizer(captions, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids
        text = torch.cat([pipe.text_encoder(ids[i:i + 64])[0] for i in range(0, len(ids), 64)])
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)
    unet = pipe.unet
    params = add_lora(unet, config["rank"])
    unet.train()
    opt = torch.optim.AdamW(params, lr=config["lr"])
    g = torch.Generator().manual_seed(config["seed"])
    bar = tqdm(range(config["steps"]), desc="train sd-lora", unit="step", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    for step in bar:
        idx = torch.randint(len(latents), (config["batch_size"],), generator=g)
        x0, cond = latents[idx], text[idx]
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (len(idx),), generator=g)
        target = noise if noise_sched.config.prediction_type == "epsilon" else noise_sched.get_velocity(x0, noise, t)
        pred = unet(noise_sched.add_noise(x0, noise, t), t, cond).sample
        loss = torch.nn.functional.mse_loss(pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if (step + 1) % config["log_every"] == 0 or step + 1 == config["steps"]:
            run.log({"step": step + 1, "loss": round(loss.item(), 6),
                     "steps_per_s": round((step + 1) / (time.perf_counter() - t0), 3)})
    unet.eval()
    save_lora(unet, run.path / LORA_FILE)
    after = _samples(pipe, prompts, config)
    _save_grid(run.path / "samples_after.png", after)
    change = float(np.abs(after - before).mean())
    run.log({"step": config["steps"], "sample_change_mean_abs": round(change, 6)})
    final.commit(run)
    return final, change


def _samples(pipe, prompts: list[str], config: dict):
    """Images in [-1, 1], NCHW, for `prompts` with a fixed seed (DDIM, the run's sample steps)."""
    import numpy as np
    import torch
    from diffusers import DDIMScheduler

    sampler = type(pipe)(**{**pipe.components, "scheduler": DDIMScheduler.from_config(pipe.scheduler.config)})
    sampler.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(config["seed"])
    size = config["resolution"]
    with torch.no_grad():
        out = sampler(prompts, num_inference_steps=config["sample_steps"], generator=g, height=size, width=size,
                      output_type="np").images
    return np.asarray(out).transpose(0, 3, 1, 2) * 2 - 1


def _save_grid(path, images) -> None:
    from gen.images import save_grid

    save_grid(path, images, nrow=len(images))
