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


from gen.nets.lora import TARGET_MODULES, add_lora, save_lora
from gen.trainkit.sd import SdRunKind

RUN_KIND = SdRunKind("sd-lora", "gen export --model sd-lora --lora RUN")  # how its runs are exported

# `gen train sd-lora`'s defaults; the CLI reads them from here
DEFAULTS = {"rank": 4, "steps": 200, "lr": 1e-3, "batch_size": 4, "seed": 0, "resolution": None,
            "sample_steps": 20, "log_every": 10, "max_images": None}
GRID = 4


def train_lora(base: str | None, data: str, out: str, options: dict, force: bool = False, progress: bool = True):
    """LoRA training into `out`, one writer at a time (a second one into the same --out fails at once)."""
    from gen.trainkit.sd.base import run_output

    with run_output(out, "train sd-lora"):
        return _train_lora(base, data, out, options, force, progress)


def _train_lora(base, data, out, options, force, progress):
    import numpy as np
    import torch
    from diffusers import DDPMScheduler

    from gen.fileio import write_json
    from gen.recipes.registry import LORA_FILE
    from gen.trainkit.sd.base import begin, denoising_loss, encode, sample, save_grid, train_adapter, training_set

    config, run, say, resolved = begin(DEFAULTS, options, ("rank", "steps", "batch_size"), out, base, force,
                                       progress, data=data)
    pipe = resolved.pipe
    size, images, captions = training_set(pipe, data, config["resolution"], config["max_images"])
    config.update(base=resolved.base, data=data, resolution=size, images=len(captions), family="sd-lora",
                  target_modules=TARGET_MODULES)
    final, run = run, run.claim(force)
    write_json(run.config_path, config)

    prompts = list(dict.fromkeys(captions))[:GRID]
    before = sample(pipe, prompts, config["seed"], size, config["sample_steps"])
    save_grid(run.path / "samples_before.png", before, len(prompts))

    torch.manual_seed(config["seed"])
    latents, text, _ = encode(pipe, images, captions)
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)
    unet = pipe.unet
    params = add_lora(unet, config["rank"])
    def step_loss(g):
        idx = torch.randint(len(latents), (config["batch_size"],), generator=g)
        return denoising_loss(unet, noise_sched, latents[idx], text[idx], g)

    train_adapter(unet, params, config, step_loss, run, "train sd-lora", progress)
    save_lora(unet, run.path / LORA_FILE)
    after = sample(pipe, prompts, config["seed"], size, config["sample_steps"])
    save_grid(run.path / "samples_after.png", after, len(prompts))
    change = float(np.abs(after - before).mean())
    run.log({"step": config["steps"], "sample_change_mean_abs": round(change, 6)})
    final.commit(run)
    return final, change
