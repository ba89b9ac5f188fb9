"""`gen distill progressive|consistency RUN` and `gen distill lcm-lora`: few-step students; `gen distill
decoder BUNDLE`: a tiny decoder for a Stable Diffusion bundle."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gen.cli.options import RESUME_HELP, refuse_resume_changes, report_written
from gen.trainkit.distill import CONSISTENCY, LOSSES, PROGRESSIVE, SOLVERS

app = typer.Typer(help="Distil a diffusion run into a few-step student (a run like any other: export, sample, serve it), "
                  "or a Stable Diffusion base into an LCM-LoRA, or a bundle's VAE decoder into a tiny one.",
                  no_args_is_help=True)

# the options both methods take, stated once
Teacher = Annotated[str, typer.Argument(help="The teacher: a run directory from `gen train ddpm` (or an N-step progressive student, to halve again with --start-steps N).")]
CdTeacher = Annotated[str, typer.Argument(help="The teacher: a run directory from `gen train ddpm` (not a distilled student: distil from its teacher).")]
Out = Annotated[str, typer.Option(help="Student run directory to create (refused if it holds a run, unless --resume or --force).")]
Lr = Annotated[float, typer.Option(help="AdamW learning rate.")]
BatchSize = Annotated[int, typer.Option(help="Batch size.")]
Guidance = Annotated[Optional[float], typer.Option(help="Classifier-free guidance of a class-conditional teacher, folded into the student (default: the teacher's own, 1 = none).")]
Seed = Annotated[Optional[int], typer.Option(help="Seed (default: the teacher's).")]
Resume = Annotated[bool, typer.Option(help=f"Continue the student in --out from its last checkpoint. {RESUME_HELP}")]
Force = Annotated[bool, typer.Option(help="Replace the student already in --out (only a run gen wrote).")]
Quiet = Annotated[bool, typer.Option(help="No progress bar.")]


def _run(ctx, method: str, run: str, out: str, options: dict, resume: bool, force: bool, quiet: bool) -> None:
    from gen.trainkit.distill import distill

    if resume:
        refuse_resume_changes(ctx, out, source=("teacher", run))

    student = distill(run, out, options, method=method, resume=resume, force=force, progress=not quiet)
    from gen.trainkit.rundir import STEP_GRID

    steps = "/".join(map(str, sorted(int(m[1]) for p in student.path.iterdir() if (m := STEP_GRID.fullmatch(p.name)))))
    report_written(f"student written to {student.path}  (samples at {steps} steps: {student.path}/samples_*steps.png; "
                   f"export: gen export {student.path})")


@app.command()
def progressive(
    ctx: typer.Context,
    run: Teacher,
    out: Out = "runs/student",
    start_steps: Annotated[int, typer.Option(help="DDIM steps of the teacher the first halving learns from (divisible by 2 ** --halvings: 16 halved twice is 4, 12 is 3).")] = PROGRESSIVE["start_steps"],
    halvings: Annotated[int, typer.Option(help="How many times to halve the step count (16 with 2 halvings: a 4-step student).")] = PROGRESSIVE["halvings"],
    steps_per_halving: Annotated[int, typer.Option(help="Optimisation steps per halving.")] = PROGRESSIVE["steps_per_halving"],
    lr: Lr = PROGRESSIVE["lr"],
    batch_size: BatchSize = PROGRESSIVE["batch_size"],
    guidance: Guidance = None,
    seed: Seed = None,
    resume: Resume = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Progressive distillation (Salimans & Ho 2022): each halving trains a v-prediction student to take
    in one DDIM step what its teacher takes in two; guidance of a conditional teacher is folded in.

    Example:  gen distill progressive runs/ddpm --out runs/ddpm-4step
    Then:     gen export runs/ddpm-4step --out bundles/ddpm-4step && gen generate bundles/ddpm-4step --n 16
    """
    _run(ctx, "progressive", run, out, {"start_steps": start_steps, "halvings": halvings, "steps_per_halving": steps_per_halving,
                                   "lr": lr, "batch_size": batch_size, "guidance": guidance, "seed": seed},
         resume, force, quiet)


@app.command()
def consistency(
    ctx: typer.Context,
    run: CdTeacher,
    out: Out = "runs/consistency",
    steps: Annotated[Optional[int], typer.Option(help=f"Optimisation steps (default {CONSISTENCY['steps']}); with --resume, the new total.")] = None,
    solver: Annotated[str, typer.Option(help=f"The teacher's ODE step: {' or '.join(SOLVERS)} (heun: second order, two teacher calls).")] = CONSISTENCY["solver"],
    skip: Annotated[int, typer.Option(help="Timesteps one teacher step spans (must divide the teacher's; 20 of 1000: a 50-point grid).")] = CONSISTENCY["skip"],
    loss: Annotated[str, typer.Option(help=f"Distance between student and target: {' or '.join(LOSSES)}.")] = CONSISTENCY["loss"],
    student_steps: Annotated[int, typer.Option(help="The student bundle's default step count (1..8 all sample).")] = CONSISTENCY["student_steps"],
    target_ema: Annotated[float, typer.Option(help="EMA decay of the target network.")] = CONSISTENCY["target_ema"],
    lr: Lr = CONSISTENCY["lr"],
    batch_size: BatchSize = CONSISTENCY["batch_size"],
    guidance: Guidance = None,
    seed: Seed = None,
    resume: Resume = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Consistency distillation (Song et al. 2023, LCM's discrete form): a student that maps any point
    of the teacher's ODE path to its end, sampled by the LCM scheduler in 1 to 8 steps (default 4).

    Example:  gen distill consistency runs/ddpm --out runs/ddpm-cd
    Then:     gen export runs/ddpm-cd --out bundles/ddpm-cd && gen generate bundles/ddpm-cd --n 16   (4 steps)
              gen generate bundles/ddpm-cd --n 16 --steps 1
    """
    _run(ctx, "consistency", run, out, {"steps": steps, "solver": solver, "skip": skip, "loss": loss,
                                   "student_steps": student_steps, "target_ema": target_ema, "lr": lr,
                                   "batch_size": batch_size, "guidance": guidance, "seed": seed},
         resume, force, quiet)


from gen.trainkit.sd.lcm_lora import DEFAULTS as LCM_LORA  # noqa: E402  (the lcm-lora command's defaults)


@app.command("lcm-lora")
def lcm_lora(
    data: Annotated[str, typer.Option(help="Captioned images: a folder with metadata.jsonl ({\"file_name\", \"text\"} per line) or a .txt beside each image; 'digits' captions the bundled digits.")] = "digits",
    out: Annotated[str, typer.Option(help="Run directory to create (refused if it holds a run, unless --force).")] = "runs/lcm-lora",
    base: Annotated[Optional[str], typer.Option(help="The base, which is also the teacher: a diffusers-format Stable Diffusion folder or a model id in the Hugging Face cache (nothing is downloaded). Default: the built-in tiny-sd.")] = None,
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = LCM_LORA["steps"],
    rank: Annotated[int, typer.Option(help="LoRA rank (alpha = rank).")] = LCM_LORA["rank"],
    lr: Lr = LCM_LORA["lr"],
    batch_size: BatchSize = LCM_LORA["batch_size"],
    skip: Annotated[int, typer.Option(help="Timesteps one teacher DDIM step spans; must divide the base's (20 of 1000: a 50-point grid, the LCM scheduler's original_inference_steps).")] = LCM_LORA["skip"],
    guidance: Annotated[float, typer.Option(help="The teacher's classifier-free guidance (diffusers' scale), folded into the student, which samples with guidance 1.")] = LCM_LORA["guidance"],
    resolution: Annotated[Optional[int], typer.Option(help="Training image size, divisible by 8 (default: the base's native size).")] = None,
    max_images: Annotated[Optional[int], typer.Option(help="Use only the first N images.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the adapter, batches and noise.")] = LCM_LORA["seed"],
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """LCM-LoRA (Luo et al. 2023): latent consistency distillation of a Stable Diffusion base into a LoRA,
    with the base as its own guided teacher, so base + LoRA samples in 4 steps with the LCM scheduler and
    no guidance. Writes RUN/lora.safetensors (diffusers format) and a teacher-vs-student check.

    Example:  gen distill lcm-lora --base ./sd15 --data ./pets --out runs/pets-lcm --steps 2000
    Then:     gen export --model sd-lora --base ./sd15 --lora runs/pets-lcm --out bundles/pets-lcm
              gen generate bundles/pets-lcm --prompt "a red house" --n 4      (lcm, 4 steps, guidance 1)
    Offline:  gen distill lcm-lora --out runs/tiny-lcm                        (tiny-sd on captioned digits)
    """
    from gen.trainkit.sd.lcm_lora import distill_lcm_lora

    options = {"steps": steps, "rank": rank, "lr": lr, "batch_size": batch_size, "skip": skip, "guidance": guidance,
               "resolution": resolution, "max_images": max_images, "seed": seed}
    run, check = distill_lcm_lora(base, data, out, options, force=force, progress=not quiet)
    few, many = check["student_steps"], check["teacher_steps"]
    typer.echo(f"LCM-LoRA written to {run.path / 'lora.safetensors'}\nimage MSE to the teacher at {many} steps, same "
               f"noise: student at {few} LCM steps {check['mse_student']:.5f}, teacher at {few} DDIM steps "
               f"{check['mse_teacher_few_steps']:.5f}, base at {few} LCM steps {check['mse_base_lcm']:.5f} "
               f"(rows of {run.path / 'samples.png'})\nexport: gen export --model sd-lora --lora {run.path}")


from gen.trainkit.sd.tiny_decoder import DEFAULTS as DECODER  # noqa: E402  (the decoder command's defaults)


def _ints(value: Optional[str], option: str) -> Optional[list[int]]:
    """A comma-separated list of positive integers (--widths 64,64,32,16)."""
    from gen.errors import GenError

    if value is None:
        return None
    try:
        out = [int(v) for v in value.split(",")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise GenError(f"{option} takes positive integers separated by commas (e.g. 64,64,32,16), got {value!r}")
    return out


@app.command("decoder")
def decoder(
    bundle: Annotated[str, typer.Argument(help="The Stable Diffusion bundle whose vae_decoder is the teacher (gen export --model sd ...); its vae_encoder encodes the photo crops.")],
    out: Annotated[str, typer.Option(help="Run directory to create (refused if it holds a run, unless --force).")] = "runs/tiny-decoder",
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = DECODER["steps"],
    lr: Lr = DECODER["lr"],
    batch_size: BatchSize = DECODER["batch_size"],
    crop: Annotated[int, typer.Option(help="Latent crop side per training sample (16: 128 x 128 pixels at SD's 8x).")] = DECODER["crop"],
    images: Annotated[int, typer.Option(help="Photo crops (scikit-image's bundled photos) encoded by the bundle's vae_encoder.")] = DECODER["images"],
    prompts: Annotated[int, typer.Option(help="Sampling runs of the bundle (one prompt each) whose final latents are recorded.")] = DECODER["prompts"],
    sample_steps: Annotated[int, typer.Option(help="Steps of those sampling runs (the bundle's default scheduler).")] = DECODER["sample_steps"],
    held_out: Annotated[float, typer.Option(help="Share of each kind of latent held out for the PSNR the bundle records.")] = DECODER["held_out"],
    widths: Annotated[Optional[str], typer.Option(help="Channels at the latent grid and after each x2 upsampling, comma-separated (default 64,64,32,16).")] = None,
    blocks: Annotated[Optional[str], typer.Option(help="Residual blocks at each of those resolutions (default 2,2,1,1).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the data, the net and the batches.")] = DECODER["seed"],
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (torch and ONNX Runtime; default: all cores).")] = None,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """A tiny decoder (TAESD-like: conv blocks, no attention, a few % of the parameters) distilled from a
    bundle's VAE decoder on the latents it really decodes: final latents of the bundle's own sampling
    runs and latents of encoded photos (part of each held out). Add it to the bundle with
    `gen export BUNDLE --tiny-decoder RUN`; then generate(decoder="tiny") or gen generate --decoder tiny.

    Example:  gen distill decoder bundles/sd --out runs/sd-tiny-decoder
    Then:     gen export bundles/sd --tiny-decoder runs/sd-tiny-decoder
              gen generate bundles/sd --prompt "a red house" --decoder tiny
    """
    from gen.trainkit.sd.tiny_decoder import distill_decoder

    options = {"steps": steps, "lr": lr, "batch_size": batch_size, "crop": crop, "images": images, "prompts": prompts,
               "sample_steps": sample_steps, "held_out": held_out, "widths": _ints(widths, "--widths"),
               "blocks": _ints(blocks, "--blocks"), "seed": seed, "threads": threads}
    run, config = distill_decoder(bundle, out, options, force=force, progress=not quiet)
    typer.echo(f"tiny decoder written to {run.path / 'weights.safetensors'}: {config['params']} parameters, held-out "
               f"PSNR {config['psnr_db']} dB against the bundle's vae_decoder on {config['held_out_latents']} latents "
               f"(a decoder that ignores its input: {config['psnr_db_mean_image']} dB; rows of {run.path / 'samples.png'})"
               f"\nadd it to the bundle: gen export {bundle} --tiny-decoder {run.path}")
