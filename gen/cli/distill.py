"""`gen distill progressive RUN`: a few-step student from a trained diffusion run."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gen.trainkit.distill import DEFAULTS

app = typer.Typer(help="Distil a diffusion run into a few-step student (a run like any other: export, sample, serve it).",
                  no_args_is_help=True)


@app.command()
def progressive(
    run: Annotated[str, typer.Argument(help="The teacher: a run directory from `gen train ddpm`.")],
    out: Annotated[str, typer.Option(help="Student run directory to create (refused if it holds a run, unless --resume or --force).")] = "runs/student",
    start_steps: Annotated[int, typer.Option(help="DDIM steps of the teacher the first halving learns from (a power of two).")] = DEFAULTS["start_steps"],
    halvings: Annotated[int, typer.Option(help="How many times to halve the step count (16 with 2 halvings: a 4-step student).")] = DEFAULTS["halvings"],
    steps_per_halving: Annotated[int, typer.Option(help="Optimisation steps per halving.")] = DEFAULTS["steps_per_halving"],
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = DEFAULTS["lr"],
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = DEFAULTS["batch_size"],
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance of a class-conditional teacher, folded into the student (default: the teacher's own, 1 = none).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (default: the teacher's).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the student in --out from its last checkpoint.")] = False,
    force: Annotated[bool, typer.Option(help="Replace the student already in --out.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Progressive distillation (Salimans & Ho 2022): each halving trains a v-prediction student to take
    in one DDIM step what its teacher takes in two; guidance of a conditional teacher is folded in.

    Example:  gen distill progressive runs/ddpm --out runs/ddpm-4step
    Then:     gen export runs/ddpm-4step --out bundles/ddpm-4step && gen generate bundles/ddpm-4step --n 16
    """
    from gen.trainkit.distill import distill

    options = {"start_steps": start_steps, "halvings": halvings, "steps_per_halving": steps_per_halving, "lr": lr,
               "batch_size": batch_size, "guidance": guidance, "seed": seed}
    student = distill(run, out, options, resume=resume, force=force, progress=not quiet)
    typer.echo(f"student written to {student.path}  (samples: {student.path / 'samples.png'}; export: gen export {student.path})")
