"""`gen train NAME`: train a model on `digits` or a folder of images into a run directory. One command
per model family, generated from its typed config (gen.cli.train_families), and the commands of the
later stages (vqvae-prior, noisy-classifier) and of the Stable Diffusion trainers (sd-lora, dreambooth,
textual-inversion), written here."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gen.cli.options import refuse_resume_changes, report_written
from gen.cli.train_families import CheckpointEvery, Force, Quiet, Resume, SampleEvery, Seed, add_family_commands
from gen.trainkit.defaults import CLASSIFIER_DEFAULTS as CLF, LOOP, PRIOR_DEFAULTS as PRIOR
from gen.trainkit.sd.dreambooth import DEFAULTS as DREAMBOOTH, LR as DREAMBOOTH_LR
from gen.trainkit.sd.lora import DEFAULTS as LORA
from gen.trainkit.sd.textual_inversion import DEFAULTS as TI

app = typer.Typer(
    help="Train a generator. Each model writes a run directory: weights (safetensors), config, "
    "metrics.jsonl, sample grids, and a checkpoint for --resume.",
    no_args_is_help=True,
)

add_family_commands(app)
CHECKPOINT_EVERY, SAMPLE_EVERY = LOOP["checkpoint_every"], LOOP["sample_every"]


@app.command("vqvae-prior")
def vqvae_prior(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="A finished VQ-VAE run (gen train vqvae).")],
    out: Annotated[str, typer.Option(help="Prior run directory to write (it holds a copy of the VQ-VAE's weights too).")] = "runs/vqvae-prior",
    steps: Annotated[Optional[int], typer.Option(help=f"Optimisation steps (default {PRIOR['steps']})")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=f"Batch size (default {PRIOR['batch_size']})")] = None,
    lr: Annotated[Optional[float], typer.Option(help=f"AdamW learning rate (default {PRIOR['lr']})")] = None,
    prior_dim: Annotated[Optional[int], typer.Option(help=f"Transformer width (default {PRIOR['prior_dim']})")] = None,
    prior_layers: Annotated[Optional[int], typer.Option(help=f"Transformer blocks (default {PRIOR['prior_layers']})")] = None,
    prior_heads: Annotated[Optional[int], typer.Option(help=f"Attention heads (default {PRIOR['prior_heads']})")] = None,
    prior_dropout: Annotated[Optional[float], typer.Option(help=f"Dropout on the residual paths (default {PRIOR['prior_dropout']})")] = None,
    seed: Seed = LOOP["seed"], checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False,
) -> None:
    """The VQ-VAE's prior: a small causal transformer over its code grid, so the VQ-VAE can generate.

    Example:  gen train vqvae-prior runs/vqvae --out runs/vqvae-prior && gen export runs/vqvae-prior --out bundles/vqvae
    """
    from gen.trainkit.families.vqvae.prior import train_prior

    options = {"steps": steps, "batch_size": batch_size, "lr": lr, "prior_dim": prior_dim, "prior_layers": prior_layers,
               "prior_heads": prior_heads, "prior_dropout": prior_dropout, "seed": seed,
               "checkpoint_every": checkpoint_every, "sample_every": sample_every}
    if resume:
        refuse_resume_changes(ctx, out, source=("run", run))
    result = train_prior(run, out, options, resume=resume, force=force, progress=not quiet)
    report_written(f"prior run written to {result.path}  (samples: {result.path / 'samples.png'}; evaluate: gen eval {result.path})")


@app.command("noisy-classifier")
def noisy_classifier(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="A finished DDPM run (gen train ddpm) on labelled data.")],
    out: Annotated[str, typer.Option(help="Classifier run directory to write (it holds a copy of the DDPM's weights too, so it exports as one guided bundle).")] = "runs/noisy-classifier",
    steps: Annotated[Optional[int], typer.Option(help=f"Optimisation steps (default {CLF['steps']})")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=f"Batch size (default {CLF['batch_size']})")] = None,
    lr: Annotated[Optional[float], typer.Option(help=f"AdamW learning rate, cosine-decayed to 0 (default {CLF['lr']})")] = None,
    classifier_width: Annotated[Optional[int], typer.Option(help=f"Channels of the classifier's first layers (default {CLF['classifier_width']})")] = None,
    classifier_scale: Annotated[Optional[float], typer.Option(help=f"The bundle's default guidance scale when labels are asked for (default {CLF['classifier_scale']})")] = None,
    seed: Seed = LOOP["seed"], checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False,
) -> None:
    """Classifier guidance (Dhariwal & Nichol 2021): a classifier of noised images p(y | x_t, t) for a DDPM.

    Trained on the DDPM run's labelled data, noised by its own schedule. The run exports as one bundle
    whose generate(labels=..., classifier_scale=S) steers each step along grad log p(y | x_t).

    Example:  gen train noisy-classifier runs/ddpm --out runs/ddpm-guided && gen export runs/ddpm-guided --out bundles/ddpm-guided
    Then:     gen generate bundles/ddpm-guided --label 3 --classifier-scale 2 --out threes.png
              gen eval runs/ddpm-guided --classifier-scale 2     (label accuracy of the requested digits)
    """
    from gen.trainkit.families.ddpm.classifier import train_noisy_classifier

    options = {"steps": steps, "batch_size": batch_size, "lr": lr, "classifier_width": classifier_width,
               "classifier_scale": classifier_scale, "seed": seed, "checkpoint_every": checkpoint_every,
               "sample_every": sample_every}
    if resume:
        refuse_resume_changes(ctx, out, source=("run", run))
    result = train_noisy_classifier(run, out, options, resume=resume, force=force, progress=not quiet)
    report_written(f"classifier run written to {result.path}  (guided samples, one class per row: {result.path / 'samples.png'}; "
               f"evaluate: gen eval {result.path} --classifier-scale S)")


@app.command("sd-lora")
def sd_lora(
    out: Annotated[str, typer.Option(help="Run directory to create (refused if it holds a run, unless --force).")] = "runs/sd-lora",
    data: Annotated[str, typer.Option(help="Folder of images with captions in metadata.jsonl ({\"file_name\", \"text\"} per line) or a .txt beside each image; 'digits' captions the bundled digits.")] = "digits",
    base: Annotated[Optional[str], typer.Option(help="Base Stable Diffusion: a diffusers-format folder or a model id in the Hugging Face cache (nothing is downloaded). Default: the built-in tiny-sd.")] = None,
    rank: Annotated[int, typer.Option(help="LoRA rank (alpha = rank).")] = LORA["rank"],
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = LORA["steps"],
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = LORA["batch_size"],
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = LORA["lr"],
    resolution: Annotated[Optional[int], typer.Option(help="Training image size, divisible by 8 (default: the base's native size).")] = None,
    max_images: Annotated[Optional[int], typer.Option(help="Use only the first N images.")] = None,
    seed: Seed = LOOP["seed"], force: Force = False, quiet: Quiet = False,
) -> None:
    """LoRA fine-tuning of a Stable Diffusion UNet on captioned images (peft; diffusers-format output).

    Example:  gen train sd-lora --base ./sd15 --data ./pets --out runs/pets --rank 4 --steps 500
    Then:     gen export --model sd-lora --lora runs/pets --out bundles/pets --fp16
    """
    from gen.trainkit.sd.lora import train_lora

    options = {"rank": rank, "steps": steps, "batch_size": batch_size, "lr": lr, "resolution": resolution,
               "max_images": max_images, "seed": seed}
    run, change = train_lora(base, data, out, options, force=force, progress=not quiet)
    typer.echo(f"LoRA written to {run.path / 'lora.safetensors'}; samples changed by {change:.4f} mean |diff| "
               f"(before: {run.path / 'samples_before.png'}, after: {run.path / 'samples_after.png'})")


Base = Annotated[Optional[str], typer.Option(help="Base Stable Diffusion: a diffusers-format folder or a model id in the Hugging Face cache (nothing is downloaded). Default: the built-in tiny-sd.")]
Instances = Annotated[str, typer.Option(help="A folder of 3 to 20 photos of the subject (no captions needed), or 'cat': five crops of scikit-image's chelsea photo, offline.")]
Resolution = Annotated[Optional[int], typer.Option(help="Training image size, divisible by 8 (default: the base's native size).")]


@app.command()
def dreambooth(
    ctx: typer.Context,
    out: Annotated[str, typer.Option(help="Run directory to create (a diffusers pipeline folder without --lora).")] = "runs/dreambooth",
    data: Instances = "cat", base: Base = None,
    instance_prompt: Annotated[str, typer.Option(help="The prompt that names the subject with a rare identifier.")] = "a photo of sks cat",
    class_prompt: Annotated[Optional[str], typer.Option(help="The subject's class, e.g. \"a photo of a cat\": what prior preservation keeps.")] = None,
    prior_preservation: Annotated[bool, typer.Option(help="Add the denoising loss of images the base draws itself for --class-prompt, so the class (and the rest) is not overwritten.")] = False,
    num_class_images: Annotated[int, typer.Option(help="Class images the base draws for prior preservation.")] = DREAMBOOTH["num_class_images"],
    class_data: Annotated[Optional[str], typer.Option(help="With --prior-preservation: a folder of class images to use instead of drawing them.")] = None,
    prior_loss_weight: Annotated[float, typer.Option(help="Weight of the class images' loss.")] = DREAMBOOTH["prior_loss_weight"],
    lora: Annotated[bool, typer.Option(help="Train a LoRA on the UNet's attention instead of the whole UNet (LoRA-DreamBooth).")] = False,
    rank: Annotated[int, typer.Option(help="With --lora: its rank (alpha = rank).")] = DREAMBOOTH["rank"],
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = DREAMBOOTH["steps"],
    lr: Annotated[Optional[float], typer.Option(help=f"AdamW learning rate (default {DREAMBOOTH_LR['full']:g} full, {DREAMBOOTH_LR['lora']:g} with --lora).")] = None,
    batch_size: Annotated[int, typer.Option(help="Instance images per step (and as many class images).")] = DREAMBOOTH["batch_size"],
    resolution: Resolution = None, seed: Seed = LOOP["seed"], force: Force = False, quiet: Quiet = False,
) -> None:
    """DreamBooth: teach a base one subject from a few photos, bound to a rare phrase (full UNet or LoRA).

    Example:  gen train dreambooth --base ./sd15 --data ./my-cat --instance-prompt "a photo of sks cat" \\
                  --class-prompt "a photo of a cat" --prior-preservation --lora --out runs/sks
    Then:     gen export --model sd-lora --lora runs/sks --out bundles/sks        (--lora)
              gen export --model sd --base runs/sks --out bundles/sks             (full: the run is a base folder)
    """
    from gen.cli.options import given_options
    from gen.errors import GenError, agree
    from gen.trainkit.sd.dreambooth import train_dreambooth

    for needs, on, names in (("--prior-preservation", prior_preservation, ("num_class_images", "prior_loss_weight")),
                             ("--lora", lora, ("rank",))):
        if not on and (unused := given_options(ctx, names)):  # refused, not silently ignored
            raise GenError(f"{', '.join(unused)} {agree(unused, 'applies', 'apply')} with {needs}")
    options = {"steps": steps, "lr": lr, "batch_size": batch_size, "rank": rank, "num_class_images": num_class_images,
               "prior_loss_weight": prior_loss_weight, "resolution": resolution, "seed": seed}
    run, changes = train_dreambooth(base, data, out, instance_prompt, options, class_prompt=class_prompt,
                                    prior_preservation=prior_preservation, lora=lora, class_data=class_data,
                                    force=force, progress=not quiet)
    export = f"gen export --model sd-lora --lora {run.path}" if lora else f"gen export --model sd --base {run.path}"
    typer.echo(f"DreamBooth run written to {run.path}; mean |change| of the samples: "
               + ", ".join(f"{k} {v:.4f}" for k, v in changes.items())
               + f" (before: {run.path / 'samples_before.png'}, after: {run.path / 'samples_after.png'}). Export: {export}")


@app.command("textual-inversion")
def textual_inversion(
    token: Annotated[str, typer.Option(help="The new word, a string the tokenizer does not know, e.g. \"<cat-toy>\".")],
    out: Annotated[str, typer.Option(help="Run directory to create.")] = "runs/textual-inversion",
    data: Instances = "cat", base: Base = None,
    init_token: Annotated[Optional[str], typer.Option(help="A word the new embedding starts from (its tokens' mean), e.g. toy. Default: the mean of the vocabulary.")] = None,
    num_vectors: Annotated[int, typer.Option(help="Embedding vectors behind the token (diffusers' multi-vector format when > 1).")] = TI["num_vectors"],
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = TI["steps"],
    lr: Annotated[float, typer.Option(help="Adam learning rate (no weight decay: the other rows must not move).")] = TI["lr"],
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = TI["batch_size"],
    resolution: Resolution = None, seed: Seed = LOOP["seed"], force: Force = False, quiet: Quiet = False,
) -> None:
    """Textual inversion: learn a new token's embedding from a few photos; nothing else changes.

    Example:  gen train textual-inversion --base ./sd15 --data ./toy --token "<cat-toy>" --init-token toy --out runs/cat-toy
    Then:     gen export --model sd --base ./sd15 --textual-inversion runs/cat-toy --out bundles/cat-toy
              gen generate bundles/cat-toy --prompt "a <cat-toy> on a beach"
    In diffusers:  pipe.load_textual_inversion("runs/cat-toy/learned_embeds.safetensors")
    """
    from gen.trainkit.sd.textual_inversion import train_textual_inversion

    options = {"steps": steps, "lr": lr, "batch_size": batch_size, "num_vectors": num_vectors, "resolution": resolution,
               "seed": seed}
    run, changes = train_textual_inversion(base, data, out, token, init_token, options, force=force, progress=not quiet)
    typer.echo(f"embedding for {token} written to {run.path / 'learned_embeds.safetensors'}; mean |change| of the samples: "
               + ", ".join(f"{k} {v:.4f}" for k, v in changes.items())
               + f" (after: {run.path / 'samples_after.png'}). Export: gen export --model sd --textual-inversion {run.path}")
