"""`gen train FAMILY` for every family the registry knows (gen's and installed plug-ins'), each command
generated from the family's typed config (gen.trainkit.config): its fields become the options, their
help and defaults the --help, the config's `data` capability the data options. Torch-free: the
configs are, so `gen train NAME --help` stays instant.

An option left unset arrives as None, so the config's own default (or its `complete()` rule, e.g.
WGAN-GP's 5 critic steps) applies, and --resume can tell what was typed.
"""

from __future__ import annotations

import inspect
from enum import Enum
from typing import Annotated, Optional

import typer

from gen.cli.options import RESUME_HELP, refuse_resume_changes, report_written
from gen.trainkit.config import UNPAIRED

OUT_HELP = "Run directory to create (refused if it holds a run, unless --resume or --force)."
# options every training command has (the stage commands in gen.cli.train too)
Seed = Annotated[int, typer.Option(help="Seed for weights, batches and noise: same seed, same run.")]
Resume = Annotated[bool, typer.Option(help=f"Continue the run in --out from its last checkpoint. {RESUME_HELP}")]
Force = Annotated[bool, typer.Option(help="Replace the run already in --out.")]
Quiet = Annotated[bool, typer.Option(help="No progress bar.")]
CheckpointEvery = Annotated[int, typer.Option(help="Write a resumable checkpoint every N steps.")]
SampleEvery = Annotated[int, typer.Option(help="Write a sample grid to RUN/samples/ every N steps.")]
SHARED = {  # beside a family's config fields: name -> (annotation, default)
    "image_size": (Annotated[Optional[int], typer.Option(help="Resize images to this square size (power of two >= 8). Default: the data's own (8 for digits).")], None),
    "resume": (Resume, False), "force": (Force, False), "quiet": (Quiet, False),
    "threads": (Annotated[Optional[int], typer.Option(help="CPU threads to train on, fixed (bitwise-reproducible runs). Default: all usable cores, fewer while other jobs use them (checked every 2 s).")], None),
}


def add_family_commands(app: typer.Typer) -> None:
    from gen.trainkit.families import config_class, families

    for name in families():
        app.command(name)(family_command(config_class(name)))


def family_command(cls):
    """A Typer command function for the family config `cls`."""
    data_name = "data_a" if cls.data == UNPAIRED else "data"
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
              _param("out", str, f"runs/{cls.name}", typer.Option(help=OUT_HELP)),
              _param(data_name, str, cls.data_default, typer.Option(help=cls.data_help))]
    for key, spec in cls.specs().items():
        if spec["cli"]:
            params.append(_field_param(cls, key, spec))
    params += [inspect.Parameter(key, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=kind)
               for key, (kind, default) in SHARED.items()]

    def command(ctx: typer.Context, **options) -> None:
        data = options.pop(data_name)
        _run(ctx, cls.name, data, **options)

    command.__name__ = cls.name.replace("-", "_")
    command.__doc__ = inspect.cleandoc(cls.summary) if cls.summary else f"Train {cls.name}."
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def _field_param(cls, key: str, spec: dict) -> inspect.Parameter:
    help = spec["help"]
    if spec["show_default"] and spec["default"] is not None:
        help = f"{help} (default {spec['default']})"
    kind = spec["type"]
    flags = ()
    if spec["choices"]:
        kind = Enum(f"{cls.__name__}_{key}", {c: c for c in spec["choices"]}, type=str)
    elif kind in (bool, Optional[bool]):
        kind, flags = bool, (f"--{key.replace('_', '-')}/--no-{key.replace('_', '-')}",)
    elif kind in (Optional[int], Optional[float]):
        kind = kind.__args__[0]
    info = typer.Option(*flags, help=help)
    if spec["bounds"]:  # a range only this family's option has: checked and stated like gen.cli.ranges' table
        from gen.cli.ranges import _bounded

        info = _bounded(info, spec["bounds"])
    return _param(key, Optional[kind], None, info)


def _param(name: str, kind, default, info) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=Annotated[kind, info])


def _run(ctx, family: str, data: str, out: str, image_size, resume: bool, force: bool, quiet: bool, threads=None,
         **overrides) -> None:
    from gen.trainkit.train import train

    overrides = {k: (v.value if isinstance(v, Enum) else v) for k, v in overrides.items()}
    if resume:  # a resumed run keeps its own config; only the step total may change (others given must match)
        refuse_resume_changes(ctx, out)
        overrides = {"steps": overrides.get("steps")}
    run = train(family, data, out, overrides, image_size=image_size, resume=resume, force=force, progress=not quiet,
                threads=threads)
    report_written(f"run written to {run.path}  (samples: {run.path / 'samples.png'}; evaluate: gen eval {run.path})")
