"""`gen train {gan,stylegan,vae,ae,vqvae,vqvae-prior,ddpm,noisy-classifier,pix2pix,cyclegan,sd-lora,dreambooth,textual-inversion}`: train a model on `digits` or a folder of images into a run directory."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from gen.cli.options import RESUME_HELP, refuse_resume_changes, report_written
from gen.trainkit.defaults import CLASSIFIER_DEFAULTS as CLF, LOOP, PRIOR_DEFAULTS as PRIOR
from gen.trainkit.families import declared_defaults
from gen.trainkit.dreambooth import DEFAULTS as DREAMBOOTH, LR as DREAMBOOTH_LR
from gen.trainkit.lora import DEFAULTS as LORA
from gen.trainkit.textual_inversion import DEFAULTS as TI

D = {f: declared_defaults(f) for f in ("gan", "stylegan", "vae", "ae", "vqvae", "ddpm", "pix2pix", "cyclegan")}  # the trainers' own DEFAULTS, for --help

app = typer.Typer(
    help="Train a generator. Each model writes a run directory: weights (safetensors), config, "
    "metrics.jsonl, sample grids, and a checkpoint for --resume.",
    no_args_is_help=True,
)

Data = Annotated[str, typer.Option(help="'digits' (bundled 8x8 scikit-learn digits), 'faces' (scikit-image's 100 lfw_subset faces at 16x16, unlabelled) or a folder of images; sub-folders are class labels.")]
Out = Annotated[str, typer.Option(help="Run directory to create (refused if it holds a run, unless --resume or --force).")]


def _opt(help: str, family: str | None = None, key: str | None = None):
    """An option whose help ends with the trainer's own default."""
    if family is not None:
        help = f"{help} (default {D[family][key]})"
    return typer.Option(help=help)


def Steps(family):
    return Annotated[Optional[int], _opt("Optimisation steps; with --resume, the new total", family, "steps")]


def BatchSize(family):
    return Annotated[Optional[int], _opt("Batch size", family, "batch_size")]


def Lr(family):
    return Annotated[Optional[float], _opt("Learning rate", family, "lr")]


Seed = Annotated[int, typer.Option(help="Seed for weights, batches and noise: same seed, same run.")]
ImageSize = Annotated[Optional[int], typer.Option(help="Resize images to this square size (power of two >= 8). Default: the data's own (8 for digits).")]
Conditional = Annotated[bool, typer.Option(help="Condition on class labels (needs labelled data).")]
Resume = Annotated[bool, typer.Option(help=f"Continue the run in --out from its last checkpoint. {RESUME_HELP}")]
Force = Annotated[bool, typer.Option(help="Replace the run already in --out.")]
CheckpointEvery = Annotated[int, typer.Option(help="Write a resumable checkpoint every N steps.")]
SampleEvery = Annotated[int, typer.Option(help="Write a sample grid to RUN/samples/ every N steps.")]
CHECKPOINT_EVERY, SAMPLE_EVERY = LOOP["checkpoint_every"], LOOP["sample_every"]
Quiet = Annotated[bool, typer.Option(help="No progress bar.")]
Threads = Annotated[Optional[int], typer.Option(help="CPU threads to train on, fixed (bitwise-reproducible runs). Default: all usable cores, fewer while other jobs use them (checked every 2 s).")]


class GanLoss(str, Enum):
    bce = "bce"
    lsgan = "lsgan"
    wgan_gp = "wgan-gp"
    hinge = "hinge"


class Schedule(str, Enum):
    linear = "linear"
    cosine = "cosine"


class Prediction(str, Enum):
    epsilon = "epsilon"
    v = "v"


def _run(ctx, family: str, data: str, out: str, image_size, resume: bool, force: bool, quiet: bool, **overrides) -> None:
    """Shared body of the three commands: the options they have in common arrive as keywords."""
    from gen.trainkit.train import train

    overrides = {k: (v.value if isinstance(v, Enum) else v) for k, v in overrides.items()}
    if resume:  # a resumed run keeps its own config; only the step total may change (others given must match)
        refuse_resume_changes(ctx, out)
        overrides = {"steps": overrides.get("steps")}
    threads = overrides.pop("threads", None)
    run = train(family, data, out, overrides, image_size=image_size, resume=resume, force=force, progress=not quiet,
                threads=threads)
    report_written(f"run written to {run.path}  (samples: {run.path / 'samples.png'}; evaluate: gen eval {run.path})")


@app.command()
def gan(
    ctx: typer.Context,
    out: Out = "runs/gan", data: Data = "digits", steps: Steps("gan") = None, seed: Seed = LOOP["seed"],
    loss: Annotated[GanLoss, typer.Option(help="bce: non-saturating DCGAN; lsgan: least squares; wgan-gp: Wasserstein + gradient penalty; hinge: hinge + spectral norm.")] = GanLoss.bce,
    n_critic: Annotated[Optional[int], _opt("Critic updates per generator update; wgan-gp: 5 unless given", "gan", "n_critic")] = None,
    conditional: Conditional = False, image_size: ImageSize = None, batch_size: BatchSize("gan") = None, lr: Lr("gan") = None,
    checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False, threads: Threads = None,
) -> None:
    """DCGAN-style GAN (optionally class-conditional)."""
    _run(ctx, "gan", data, out, image_size, resume, force, quiet, steps=steps, seed=seed, loss=loss, n_critic=n_critic,
         conditional=conditional, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, sample_every=sample_every, threads=threads)


@app.command()
def vae(
    ctx: typer.Context,
    out: Out = "runs/vae", data: Data = "digits", steps: Steps("vae") = None, seed: Seed = LOOP["seed"],
    beta: Annotated[Optional[float], _opt("KL weight (1 = the ELBO; >1 = beta-VAE)", "vae", "beta")] = None,
    latent_dim: Annotated[Optional[int], _opt("Latent dimensions", "vae", "latent_dim")] = None,
    image_size: ImageSize = None, batch_size: BatchSize("vae") = None, lr: Lr("vae") = None,
    checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False, threads: Threads = None,
) -> None:
    """Convolutional VAE."""
    _run(ctx, "vae", data, out, image_size, resume, force, quiet, steps=steps, seed=seed, beta=beta, latent_dim=latent_dim,
         batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, sample_every=sample_every, threads=threads)


@app.command()
def stylegan(
    ctx: typer.Context,
    out: Out = "runs/stylegan", data: Data = "digits", steps: Steps("stylegan") = None, seed: Seed = LOOP["seed"],
    progressive: Annotated[bool, typer.Option(help="Grow from 4x4 to the full size over the first half of the steps, fading each resolution in (ProGAN).")] = False,
    z_dim: Annotated[Optional[int], _opt("Dimensions of z", "stylegan", "z_dim")] = None,
    w_dim: Annotated[Optional[int], _opt("Dimensions of w (the style space)", "stylegan", "w_dim")] = None,
    mapping_layers: Annotated[Optional[int], _opt("Layers of the mapping network", "stylegan", "mapping_layers")] = None,
    width: Annotated[Optional[int], _opt("Channels at the full resolution (doubling per halving, up to 256)", "stylegan", "width")] = None,
    r1_gamma: Annotated[Optional[float], _opt("R1 penalty weight on real images", "stylegan", "r1_gamma")] = None,
    r1_every: Annotated[Optional[int], _opt("Apply R1 every N steps (lazy regularisation)", "stylegan", "r1_every")] = None,
    ema_beta: Annotated[Optional[float], _opt("EMA decay of the sampled generator's weights", "stylegan", "ema_beta")] = None,
    image_size: ImageSize = None, batch_size: BatchSize("stylegan") = None, lr: Lr("stylegan") = None,
    checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False, threads: Threads = None,
) -> None:
    """StyleGAN2-style GAN: mapping network, modulated convolutions, noise, R1, EMA; optionally progressive.

    Then:  gen export runs/stylegan --out bundles/stylegan
           gen generate bundles/stylegan --psi 0.7 --out grid.png
           gen generate bundles/stylegan --seed 1 --mix-seed 2 --mix-layer 2 --out mixed.png
           gen generate bundles/stylegan --interpolate 1 2 --frames 16 --out walk.gif
    """
    _run(ctx, "stylegan", data, out, image_size, resume, force, quiet, steps=steps, seed=seed, progressive=progressive or None,
         z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers, width=width, r1_gamma=r1_gamma, r1_every=r1_every,
         ema_beta=ema_beta, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, sample_every=sample_every, threads=threads)


@app.command()
def ae(
    ctx: typer.Context,
    out: Out = "runs/ae", data: Data = "digits", steps: Steps("ae") = None, seed: Seed = LOOP["seed"],
    latent_dim: Annotated[Optional[int], _opt("Latent dimensions", "ae", "latent_dim")] = None,
    image_size: ImageSize = None, batch_size: BatchSize("ae") = None, lr: Lr("ae") = None,
    checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False, threads: Threads = None,
) -> None:
    """Plain autoencoder: the VAE's networks without the KL term. Reconstructs; cannot sample (no prior).

    Then:  gen eval runs/ae   (reconstruction PSNR);  gen generate BUNDLE --reconstruct --image digit.png --out r.png
    """
    _run(ctx, "ae", data, out, image_size, resume, force, quiet, steps=steps, seed=seed, latent_dim=latent_dim,
         batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, sample_every=sample_every, threads=threads)


@app.command()
def vqvae(
    ctx: typer.Context,
    out: Out = "runs/vqvae", data: Data = "digits", steps: Steps("vqvae") = None, seed: Seed = LOOP["seed"],
    grid: Annotated[Optional[int], _opt("Side of the code grid (the image halved down to it)", "vqvae", "grid")] = None,
    codebook_size: Annotated[Optional[int], _opt("Codes in the codebook (K)", "vqvae", "codebook_size")] = None,
    code_dim: Annotated[Optional[int], _opt("Dimensions of each code vector", "vqvae", "code_dim")] = None,
    commitment: Annotated[Optional[float], _opt("Commitment loss weight (beta)", "vqvae", "commitment")] = None,
    ema_decay: Annotated[Optional[float], _opt("EMA decay of the codebook updates", "vqvae", "ema_decay")] = None,
    dead_code_threshold: Annotated[Optional[float], _opt("Restart a code whose EMA use falls below this many vectors per batch", "vqvae", "dead_code_threshold")] = None,
    image_size: ImageSize = None, batch_size: BatchSize("vqvae") = None, lr: Lr("vqvae") = None,
    checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False, threads: Threads = None,
) -> None:
    """VQ-VAE: encoder, EMA codebook with dead-code restarts, decoder. To sample, train its prior next.

    Then:  gen train vqvae-prior runs/vqvae --out runs/vqvae-prior;  gen export runs/vqvae-prior
    """
    _run(ctx, "vqvae", data, out, image_size, resume, force, quiet, steps=steps, seed=seed, grid=grid,
         codebook_size=codebook_size, code_dim=code_dim, commitment=commitment, ema_decay=ema_decay,
         dead_code_threshold=dead_code_threshold, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every,
         sample_every=sample_every, threads=threads)


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
    from gen.trainkit.vqvae_prior import train_prior

    options = {"steps": steps, "batch_size": batch_size, "lr": lr, "prior_dim": prior_dim, "prior_layers": prior_layers,
               "prior_heads": prior_heads, "prior_dropout": prior_dropout, "seed": seed,
               "checkpoint_every": checkpoint_every, "sample_every": sample_every}
    if resume:
        refuse_resume_changes(ctx, out, source=("run", run))
    result = train_prior(run, out, options, resume=resume, force=force, progress=not quiet)
    report_written(f"prior run written to {result.path}  (samples: {result.path / 'samples.png'}; evaluate: gen eval {result.path})")


@app.command()
def ddpm(
    ctx: typer.Context,
    out: Out = "runs/ddpm", data: Data = "digits", steps: Steps("ddpm") = None, seed: Seed = LOOP["seed"],
    schedule: Annotated[Schedule, typer.Option(help="Noise schedule: linear (Ho et al.) or cosine (Nichol & Dhariwal).")] = Schedule(D["ddpm"]["schedule"]),
    prediction: Annotated[Prediction, typer.Option(help="What the UNet predicts: epsilon (noise) or v (velocity).")] = Prediction(D["ddpm"]["prediction"]),
    conditional: Annotated[bool, typer.Option(help="Class-conditional with label dropout, so classifier-free guidance works when sampling.")] = False,
    image_size: ImageSize = None, batch_size: BatchSize("ddpm") = None, lr: Lr("ddpm") = None,
    checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False, threads: Threads = None,
) -> None:
    """DDPM on diffusers' UNet2DModel, with EMA weights; samples with DDIM."""
    _run(ctx, "ddpm", data, out, image_size, resume, force, quiet, steps=steps, seed=seed, schedule=schedule,
         prediction=prediction, conditional=conditional, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, sample_every=sample_every, threads=threads)


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
    from gen.trainkit.noisy_classifier import train_noisy_classifier

    options = {"steps": steps, "batch_size": batch_size, "lr": lr, "classifier_width": classifier_width,
               "classifier_scale": classifier_scale, "seed": seed, "checkpoint_every": checkpoint_every,
               "sample_every": sample_every}
    if resume:
        refuse_resume_changes(ctx, out, source=("run", run))
    result = train_noisy_classifier(run, out, options, resume=resume, force=force, progress=not quiet)
    report_written(f"classifier run written to {result.path}  (guided samples, one class per row: {result.path / 'samples.png'}; "
               f"evaluate: gen eval {result.path} --classifier-scale S)")


@app.command()
def pix2pix(
    ctx: typer.Context,
    out: Annotated[str, typer.Option(help="Run directory to write.")] = "runs/pix2pix",
    data: Annotated[str, typer.Option(help="Paired data: colorize (gray -> colour), sr4x (4x super-resolution) or edges (edges -> photo), 32x32 crops of scikit-image's bundled photos; or a folder with A/ and B/ sub-folders paired by file name; or a folder of side-by-side pairs with --side-by-side.")] = "colorize",
    direction: Annotated[Optional[str], _opt("AtoB: A is the input, B the target; BtoA the other way", "pix2pix", "direction")] = None,
    side_by_side: Annotated[bool, typer.Option(help="--data holds side-by-side pairs (A left, B right), as the pix2pix datasets ship.")] = False,
    steps: Steps("pix2pix") = None, seed: Seed = LOOP["seed"],
    l1_weight: Annotated[Optional[float], _opt("Weight of the L1 term beside the GAN loss (the paper's lambda)", "pix2pix", "l1_weight")] = None,
    gan_weight: Annotated[Optional[float], typer.Option(help="Weight of the GAN term (0: L1 alone, the PSNR-optimal regression; the paper's L1-only ablation). Default: 0 for restoration tasks whose input has the output's channels (sr4x: the GAN texture costs PSNR), 1 otherwise.")] = None,
    width: Annotated[Optional[int], _opt("Channels of the first U-Net block (doubling down to 8x)", "pix2pix", "width")] = None,
    residual: Annotated[Optional[bool], typer.Option("--residual/--no-residual", help="The generator adds its output to its input (default: when input and output have the same channels, e.g. sr4x).")] = None,
    image_size: ImageSize = None, batch_size: BatchSize("pix2pix") = None, lr: Lr("pix2pix") = None,
    checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False, threads: Threads = None,
) -> None:
    """pix2pix: U-Net generator + PatchGAN on paired images (colorization, super-resolution, edges -> photo)."""
    _run(ctx, "pix2pix", data, out, image_size, resume, force, quiet, steps=steps, seed=seed, direction=direction,
         side_by_side=side_by_side or None, l1_weight=l1_weight, gan_weight=gan_weight, width=width, residual=residual, batch_size=batch_size, lr=lr,
         checkpoint_every=checkpoint_every, sample_every=sample_every, threads=threads)


@app.command()
def cyclegan(
    ctx: typer.Context,
    out: Annotated[str, typer.Option(help="Run directory to write.")] = "runs/cyclegan",
    data_a: Annotated[str, typer.Option(help="Domain A: digits-thin or digits-thick (the bundled digits at 16x16, eroded or dilated; thin from the even-numbered digits, thick from the odd, so no image has its counterpart), digits (plain), or a folder of images.")] = "digits-thin",
    data_b: Annotated[Optional[str], _opt("Domain B, as --data-a", "cyclegan", "data_b")] = None,
    steps: Steps("cyclegan") = None, seed: Seed = LOOP["seed"],
    cycle_weight: Annotated[Optional[float], _opt("Weight of the cycle-consistency L1 (A -> B -> A and back)", "cyclegan", "cycle_weight")] = None,
    identity_weight: Annotated[Optional[float], _opt("Identity L1 weight, as a fraction of the cycle weight (0 turns it off)", "cyclegan", "identity_weight")] = None,
    width: Annotated[Optional[int], _opt("Channels of the generators' first layer (x4 in the residual blocks)", "cyclegan", "width")] = None,
    blocks: Annotated[Optional[int], _opt("Residual blocks per generator", "cyclegan", "blocks")] = None,
    pool_size: Annotated[Optional[int], _opt("Fakes kept in each discriminator's image pool", "cyclegan", "pool_size")] = None,
    image_size: ImageSize = None, batch_size: BatchSize("cyclegan") = None, lr: Lr("cyclegan") = None,
    checkpoint_every: CheckpointEvery = CHECKPOINT_EVERY, sample_every: SampleEvery = SAMPLE_EVERY,
    resume: Resume = False, force: Force = False, quiet: Quiet = False, threads: Threads = None,
) -> None:
    """CycleGAN: two ResNet generators (A -> B, B -> A) from unpaired domains, LSGAN + cycle + identity losses.

    Example:  gen train cyclegan --data-a photos/summer --data-b photos/winter --image-size 64 --out runs/seasons
    Then:     gen export runs/seasons --out bundles/seasons;  gen generate bundles/seasons --image x.png --direction BtoA --out y.png
    """
    _run(ctx, "cyclegan", data_a, out, image_size, resume, force, quiet, steps=steps, seed=seed, data_b=data_b,
         cycle_weight=cycle_weight, identity_weight=identity_weight, width=width, blocks=blocks, pool_size=pool_size,
         batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, sample_every=sample_every, threads=threads)


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
    from gen.trainkit.lora import train_lora

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
    from gen.trainkit.dreambooth import train_dreambooth

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
    from gen.trainkit.textual_inversion import train_textual_inversion

    options = {"steps": steps, "lr": lr, "batch_size": batch_size, "num_vectors": num_vectors, "resolution": resolution,
               "seed": seed}
    run, changes = train_textual_inversion(base, data, out, token, init_token, options, force=force, progress=not quiet)
    typer.echo(f"embedding for {token} written to {run.path / 'learned_embeds.safetensors'}; mean |change| of the samples: "
               + ", ".join(f"{k} {v:.4f}" for k, v in changes.items())
               + f" (after: {run.path / 'samples_after.png'}). Export: gen export --model sd --textual-inversion {run.path}")
