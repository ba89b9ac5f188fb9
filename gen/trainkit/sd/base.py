"""What the trainers of a Stable Diffusion base share (`gen train sd-lora|dreambooth|textual-inversion`,
`gen distill lcm-lora`): option checks, the base, the training set encoded once, sample grids and
the change a training made to each prompt's images.

The VAE and text encoder stay frozen in both, so the training set's latents and text embeddings
are computed once and every step is UNet work only.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from gen.errors import GenError
from gen.trainkit.checks import check_lr, check_positive_ints


def check_options(config: dict, positive: tuple[str, ...]) -> None:
    """Refuse non-positive counts and learning rates by option name, before anything is loaded."""
    check_positive_ints(config, positive)
    check_lr(config)


@contextlib.contextmanager
def run_output(out: str, command: str):
    """Around an SD trainer: one process (no launcher), one writer (out's lock), and a new run that
    fails removes what it wrote (config, before-grids, class images: with no checkpoint to resume from,
    they would only make the retry need --force). A run being replaced (--force) is written beside the
    old one, which stays as it was."""
    from gen.outputs import absolute, output_lock, remove_stale
    from gen.trainkit.distributed import refuse_launcher
    from gen.trainkit.rundir import RunDir

    refuse_launcher(command)
    existed = Path(out).exists()
    with output_lock(out):
        fresh = not RunDir(out).is_run()
        try:
            yield
        except BaseException:
            remove_stale(absolute(out))  # a replacement's unfinished sibling
            if fresh:
                RunDir(out).discard_unstarted(keep_dir=existed)
            raise


def begin(defaults: dict, options: dict, positive: tuple[str, ...], out: str, base: str | None, force: bool,
          progress: bool, data: str | None = None):
    """What every SD trainer does first: (config = defaults with the given options, the output's
    RunDir after its checks, a print-or-nothing `say`, the resolved base)."""
    from gen.trainkit.rundir import RunDir

    config = {**defaults, **{k: v for k, v in options.items() if v is not None}}
    check_options(config, positive)
    run = RunDir(out)
    run.check(resume=False, force=force, resumable=False, sources=(base, data))
    say = print if progress else (lambda *_: None)
    return config, run, say, load_base(base, say)


def load_base(base: str | None, say):
    """The base pipeline (Resolved): a folder or cached model id, or the built-in tiny-sd."""
    from gen.recipes.registry import load_pipeline

    return load_pipeline("sd", base) if base else load_pipeline("tiny-sd", progress=say)


def training_set(pipe, data: str, resolution: int | None, max_images: int | None):
    """(image size, images in [-1, 1], captions); the size defaults to the base's native one."""
    from gen.trainkit.data.captions import load_captioned

    size = native_size(pipe, resolution)
    images, captions = load_captioned(data, size, max_images)
    return size, images, captions


def native_size(pipe, resolution: int | None) -> int:
    """The training image size: --resolution, or the base's native one."""
    vae_scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    size = resolution or pipe.unet.config.sample_size * vae_scale
    if size % 8:
        raise GenError(f"--resolution must be divisible by 8, got {size}", "resolution")
    return size


def latents(pipe, images):
    """The VAE's scaled latents (posterior mode) of images in [-1, 1], in chunks, without gradients."""
    import torch

    with torch.no_grad():
        return torch.cat([pipe.vae.encode(torch.from_numpy(images[i:i + 16])).latent_dist.mode()
                          for i in range(0, len(images), 16)]) * pipe.vae.config.scaling_factor


def token_ids(tokenizer, prompts: list[str]):
    """Prompts as the text encoder reads them: padded (and cut) to the tokenizer's length."""
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def encode(pipe, images, captions: list[str]):
    """(scaled latents, text embeddings) of the whole set, in chunks; plus the empty prompt's embedding
    (the unconditional half of classifier-free guidance)."""
    import torch

    ids = token_ids(pipe.tokenizer, [*captions, ""])
    with torch.no_grad():
        text = torch.cat([pipe.text_encoder(ids[i:i + 64])[0] for i in range(0, len(ids), 64)])
    return latents(pipe, images), text[:-1], text[-1:]


def sample(pipe, prompts: list[str], seed: int, size: int, steps: int, scheduler=None, guidance: float = 7.5):
    """Images in [-1, 1], NCHW, for `prompts` from a fixed seed: diffusers' own pipeline with
    `scheduler` (default DDIM on the base's schedule). The seed fixes the initial latents, so two
    calls with the same seed start from the same noise whatever their schedulers."""
    import numpy as np
    import torch
    from diffusers import DDIMScheduler

    scheduler = scheduler or DDIMScheduler.from_config(pipe.scheduler.config)
    sampler = type(pipe)(**{**pipe.components, "scheduler": scheduler})
    sampler.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out = sampler(prompts, num_inference_steps=steps, guidance_scale=guidance, generator=g, height=size,
                      width=size, output_type="np").images
    return np.asarray(out).transpose(0, 3, 1, 2) * 2 - 1


def denoising_loss(unet, noise_sched, x0, cond, g):
    """Stable Diffusion's training loss on latents x0 with text embeddings cond: MSE to the noise (or
    velocity, for a v-prediction base) at uniformly drawn timesteps; noise and timesteps from g."""
    import torch

    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, noise_sched.config.num_train_timesteps, (len(x0),), generator=g)
    target = noise if noise_sched.config.prediction_type == "epsilon" else noise_sched.get_velocity(x0, noise, t)
    pred = unet(noise_sched.add_noise(x0, noise, t), t, cond).sample
    return torch.nn.functional.mse_loss(pred, target)


def prompt_changes(before, after, groups: dict[str, int]) -> dict[str, float]:
    """Mean |after - before| per prompt group of the sample grids (images in [-1, 1], grouped in
    order: {"instance": 2, "unrelated": 2} means the first two images, then the next two)."""
    import numpy as np

    out, i = {}, 0
    for name, count in groups.items():
        out[name] = round(float(np.abs(after[i:i + count] - before[i:i + count]).mean()), 6)
        i += count
    return out


def save_grid(path, images, nrow: int) -> None:
    from gen.images import save_grid as save

    save(path, images, nrow=nrow)


def train_adapter(unet, params, config: dict, step_loss, run, desc: str, progress: bool, clip_grad: float | None = None):
    """The loop the adapter and personalization trainers share: AdamW on `params` (weight decay
    config["weight_decay"], default 0.01), `step_loss(g)` for one batch, progress bar, metrics.jsonl;
    the UNet is left in eval mode."""
    import time

    import torch
    from tqdm import tqdm

    unet.train()
    opt = torch.optim.AdamW(params, lr=config["lr"], weight_decay=config.get("weight_decay", 0.01))
    g = torch.Generator().manual_seed(config["seed"])
    bar = tqdm(range(config["steps"]), desc=desc, unit="step", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    for step in bar:
        loss = step_loss(g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if (step + 1) % config["log_every"] == 0 or step + 1 == config["steps"]:
            run.log({"step": step + 1, "loss": round(loss.item(), 6),
                     "steps_per_s": round((step + 1) / (time.perf_counter() - t0), 3)})
    unet.eval()
