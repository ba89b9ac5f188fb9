"""`gen train dreambooth`: teach a base a subject from a few photos, bound to a rare phrase
(Ruiz et al. 2022), by fine-tuning the whole UNet or a LoRA on it.

Prior preservation: the base first draws `num_class_images` images of the subject's class ("a photo
of a cat") itself; every step then adds their denoising loss (weight `prior_loss_weight`) to the
instance loss, so the class, and what the model knew besides, is not overwritten by five photos.
The text encoder and VAE stay frozen: latents and prompt embeddings are computed once.

    RUN/config.json                 base, prompts, mode and hyper-parameters
    RUN/lora.safetensors            with --lora: the adapter in diffusers' format
    RUN/model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/
                                    without --lora: the whole pipeline in diffusers' format (a base folder)
    RUN/class_images/               the prior-preservation images the base drew (PNG)
    RUN/samples_before.png, samples_after.png   instance prompt, class prompt, an unrelated prompt; fixed seed
    RUN/metrics.jsonl               loss per logged step, then the change to each prompt's images

Export: `gen export --model sd-lora --lora RUN` (LoRA) or `gen export --model sd --base RUN` (full).
"""

from __future__ import annotations

from gen.errors import GenError
from gen.trainkit.sd import SdRunKind


FAMILY = "dreambooth"
RUN_KIND = SdRunKind(FAMILY, "gen export --model sd-lora --lora RUN (a --lora run) or gen export --model sd --base RUN")  # how its runs are exported
DEFAULTS = {"steps": 200, "lr": None, "batch_size": 1, "rank": 4, "num_class_images": 50, "prior_loss_weight": 1.0,
            "seed": 0, "resolution": None, "sample_steps": 20, "log_every": 10}
LR = {"full": 5e-6, "lora": 1e-4}  # the DreamBooth paper's / diffusers' script's defaults per mode
UNRELATED = "a red house by a lake"  # with prior preservation its images should barely change
CLASS_BATCH = 8  # class images drawn per pipeline call


def train_dreambooth(base: str | None, data: str, out: str, instance_prompt: str, options: dict,
                     class_prompt: str | None = None, prior_preservation: bool = False, lora: bool = False,
                     class_data: str | None = None, force: bool = False, progress: bool = True):
    """DreamBooth into `out`, one writer at a time; returns (RunDir, changes per prompt group)."""
    from gen.runtime.prompts import check_text
    from gen.trainkit.sd.base import run_output

    for text, option in ((instance_prompt, "--instance-prompt"), (class_prompt, "--class-prompt")):
        if text is not None:
            check_text(text, option)  # before a byte is written: no run to clean up
    if not instance_prompt or not instance_prompt.strip():
        raise GenError("--instance-prompt must name the subject with a rare phrase, e.g. \"a photo of sks cat\"",
                       "instance_prompt")
    if prior_preservation and not class_prompt:
        raise GenError("--prior-preservation needs --class-prompt (the subject's class, e.g. \"a photo of a cat\")",
                       "class_prompt")
    if class_data and not prior_preservation:
        raise GenError("--class-data applies with --prior-preservation", "class_data")
    with run_output(out, "train dreambooth"):
        return _train(base, data, out, instance_prompt, class_prompt, prior_preservation, lora, class_data, options,
                      force, progress)


def _train(base, data, out, instance_prompt, class_prompt, prior, lora, class_data, options, force, progress):
    import torch
    from diffusers import DDPMScheduler

    from gen.fileio import write_json
    from gen.nets.lora import TARGET_MODULES, add_lora, save_lora
    from gen.recipes.registry import LORA_FILE
    from gen.trainkit.data.instances import load_instances
    from gen.trainkit.sd.base import (begin, denoising_loss, latents, native_size, prompt_changes, sample, save_grid,
                                     token_ids, train_adapter)

    mode = "lora" if lora else "full"
    if not (options.get("prior_loss_weight") or 0) >= 0:
        raise GenError(f"--prior-loss-weight must be >= 0, got {options['prior_loss_weight']}", "prior_loss_weight")
    config, run, say, resolved = begin({**DEFAULTS, "lr": LR[mode]}, options,
                                       ("steps", "batch_size", "rank", "num_class_images"), out, base, force, progress, data=data)
    pipe = resolved.pipe
    size = native_size(pipe, config["resolution"])
    images = load_instances(data, size)
    class_images = load_instances(class_data, size) if class_data else None
    config.update(base=resolved.base, data=data, resolution=size, images=len(images), family=FAMILY, mode=mode,
                  instance_prompt=instance_prompt, class_prompt=class_prompt, prior_preservation=prior,
                  class_data=class_data, **({"target_modules": TARGET_MODULES} if lora else {}))
    final, run = run, run.claim(force)
    write_json(run.config_path, config)

    groups = {"instance": 2, **({"class": 2} if class_prompt else {}), "unrelated": 2}
    prompts = [instance_prompt] * 2 + [class_prompt] * (2 if class_prompt else 0) + [UNRELATED] * 2
    before = sample(pipe, prompts, config["seed"], size, config["sample_steps"])
    save_grid(run.path / "samples_before.png", before, 2)
    if prior and class_images is None:
        class_images = _draw_class_images(pipe, class_prompt, config, size, run.path / "class_images", say)

    torch.manual_seed(config["seed"])
    unet = pipe.unet
    instance_latents = latents(pipe, images)
    class_latents = latents(pipe, class_images) if prior else None
    with torch.no_grad():
        text = pipe.text_encoder(token_ids(pipe.tokenizer, [instance_prompt, class_prompt or ""]))[0]
    if lora:
        params = add_lora(unet, config["rank"])
    else:
        params = [p for p in unet.parameters()]
        unet.requires_grad_(True)
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)
    bs = config["batch_size"]

    def step_loss(g):
        idx = torch.randint(len(instance_latents), (bs,), generator=g)
        loss = denoising_loss(unet, noise_sched, instance_latents[idx], text[:1].expand(bs, -1, -1), g)
        if prior:
            cidx = torch.randint(len(class_latents), (bs,), generator=g)
            loss = loss + config["prior_loss_weight"] * denoising_loss(unet, noise_sched, class_latents[cidx],
                                                                       text[1:].expand(bs, -1, -1), g)
        return loss

    train_adapter(unet, params, config, step_loss, run, f"train dreambooth ({mode})", progress, clip_grad=1.0)
    unet.requires_grad_(False)
    if lora:
        save_lora(unet, run.path / LORA_FILE)
    else:
        pipe.save_pretrained(str(run.path), safe_serialization=True)
    after = sample(pipe, prompts, config["seed"], size, config["sample_steps"])
    save_grid(run.path / "samples_after.png", after, 2)
    changes = prompt_changes(before, after, groups)
    run.log({"step": config["steps"], "sample_change_mean_abs": changes,
             "unrelated_over_instance": round(changes["unrelated"] / max(changes["instance"], 1e-12), 4)})
    final.commit(run)
    return final, changes


def _draw_class_images(pipe, class_prompt: str, config: dict, size: int, folder, say):
    """The base's own images of the class prompt (saved as PNGs beside the run), in [-1, 1]."""
    import numpy as np
    from tqdm import tqdm

    from gen.images import save_image
    from gen.trainkit.sd.base import sample

    n = config["num_class_images"]
    say(f"drawing {n} class images of {class_prompt!r} with the base (prior preservation) ...")
    out = []
    for i in tqdm(range(0, n, CLASS_BATCH), desc="class images", unit="batch", disable=say is not print):
        k = min(CLASS_BATCH, n - i)
        out.append(sample(pipe, [class_prompt] * k, config["seed"] + 1 + i, size, config["sample_steps"]))
    images = np.concatenate(out).astype(np.float32)
    folder.mkdir()
    for i, im in enumerate(images):
        save_image(folder / f"{i:04d}.png", im)
    return images
