"""Small pieces several commands share."""

from __future__ import annotations

import contextlib
import re
import shlex
import sys

from gen.errors import GenError, agree, flag

# every backend gen.runtime registers, for the --backend help of each command that samples
BACKENDS_HELP = ("auto (this host's plan from `gen tune`, else ort fp32), eager (PyTorch), ort (ONNX Runtime; needs "
                 "no torch), openvino (OpenVINO on the CPU: pip install 'gen[openvino]'), compile (torch.compile; CUDA "
                 "graphs on a GPU) or trt (TensorRT engines; needs TensorRT and a GPU, unverified here)")


def require_bundle_or_url(bundle: str | None, url: str | None, model: str | None = None,
                          local_options: tuple = (), served_options: tuple = ()) -> None:
    """Commands that run either a local bundle or a served model take exactly one of the two; a
    served model needs --model. Options that steer only the other kind of run are refused rather than
    silently ignored (`local_options`, `served_options`: the ones the user typed, as flags)."""
    if bundle is None and url is None:
        raise GenError("give a BUNDLE directory (written by `gen export`), or --url and --model for a served model")
    if bundle is not None and url is not None:
        raise GenError(f"give either a BUNDLE directory or --url, not both (got {bundle} and --url {url})")
    if url is not None and not model:
        raise GenError(f"--url needs --model NAME: the pipeline model's name in the server's repository "
                       f"(`gen serve status {url}` lists them)")
    if url is not None and local_options:
        raise GenError(f"{', '.join(local_options)} {agree(local_options, 'applies', 'apply')} to a local bundle; "
                       "a served model runs as its repository was built (gen serve build): drop "
                       f"{agree(local_options, 'it', 'them')}, or give a BUNDLE instead of --url")
    if bundle is not None and served_options:
        raise GenError(f"{', '.join(served_options)} {agree(served_options, 'applies', 'apply')} with --url (a served "
                       f"model); drop {agree(served_options, 'it', 'them')} for a local BUNDLE")


def given_options(ctx, names: tuple[str, ...]) -> tuple[str, ...]:
    """Of `names` (parameter names), those the user typed, as their flags: defaults left alone do not count."""
    flags = {p.name: max(p.opts, key=len) for p in ctx.command.params}  # e.g. plot_out -> --plot
    # by the enum's name: typer vendors its own click, whose ParameterSource is not click's
    return tuple(flags[n] for n in names
                 if getattr(ctx.get_parameter_source(n), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP"))


def flag_message(message: str, argument: str | None, flags: dict[str, str] | None = None) -> str:
    """A library error about a Python argument, worded for the command line: the argument's name at
    the start becomes its flag (`steps must be ...` -> `--steps must be ...`, `steps = 9 is ...` ->
    `--steps 9 is ...`), else the flag leads."""
    if not argument:
        return message
    name = (flags or {}).get(argument) or flag(argument)
    if message.startswith("--"):  # worded for the command line already
        return message
    valued = re.match(rf"{re.escape(argument)} = (\S+) ", message)  # "steps = 9 is ..." -> "--steps 9 is ..."
    if valued:
        return f"{name} {valued[1]} {message[valued.end():]}"
    if re.match(rf"{re.escape(argument)} (?:must|given|applies|is|takes)\b", message):  # not "height x width = ..."
        return name + message[len(argument):]
    return f"{name}: {message}"


@contextlib.contextmanager
def library_errors_as_flags(flags: dict[str, str] | None = None):
    """Inside: a GenError about a generate() argument is re-raised worded with its flag (flag_message)."""
    try:
        yield
    except GenError as e:
        raise GenError(flag_message(str(e), e.argument, flags), e.argument) from None


def command_line() -> str:
    """The command as typed, for results files."""
    return "gen " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def report_written(message: str) -> None:
    """A training command's last line, said once: under torchrun / accelerate launch every process
    runs the command, but rank 0 alone wrote the run, so it alone reports it, with the process count."""
    import typer

    from gen.trainkit.distributed import launched_processes, launched_rank

    processes = launched_processes()
    if launched_rank() == 0:
        typer.echo(message + (f"\ntrained by {processes} processes (data-parallel)" if processes > 1 else ""))


RESUME_HELP = ("A resumed run keeps everything it was started with (its teacher or source run, data, sizes, --lr, "
               "--batch-size, --seed, loss, solver, ...); only --steps, the new total, may change: another value "
               "given with --resume is refused, naming it.")
CHANGEABLE_ON_RESUME = ("out", "resume", "force", "quiet", "steps", "threads")  # threads: how, not what, it trains


def refuse_resume_changes(ctx, out: str, source: tuple[str, str] | None = None) -> None:
    """--resume continues a run with the options it was started with: an option typed with it whose value
    differs from the run's (or that the run does not record) is refused by name instead of being
    silently ignored. `source`: (what, path) of the run it was trained from (a teacher, a VQ-VAE), which
    must be the recorded one."""
    import math
    from enum import Enum
    from pathlib import Path

    from gen.fileio import read_json
    from gen.trainkit.rundir import RunDir

    run = RunDir(out)
    if not run.is_run():
        return  # RunDir.check says what is missing
    config = read_json(run.config_path, "run config")  # as recorded; its full check comes with the resume
    recorded = {**config, **(config.get("distill") or {})}
    recorded.setdefault("data_a", config.get("data"))  # cyclegan's --data-a is the run's data
    changed = []
    if source is not None:
        what, path = source
        was = recorded.get("teacher") or recorded.get("source_run")
        if was and Path(path).resolve() != Path(was):
            changed.append(f"{what} {path} (the run's: {was})")
    arguments = {p.name for p in ctx.command.params if p.param_type_name == "argument"}
    typed = given_options(ctx, tuple(n for n in ctx.params if n not in CHANGEABLE_ON_RESUME and n not in arguments))
    names = {max(p.opts, key=len): p.name for p in ctx.command.params}
    for shown_flag in typed:
        name = names[shown_flag]
        value = ctx.params[name]
        value = value.value if isinstance(value, Enum) else value
        was = recorded.get(name, "not recorded")
        same = (was == value or (isinstance(was, (int, float)) and isinstance(value, (int, float))
                                 and math.isclose(was, value, rel_tol=1e-9)))
        if not same:
            changed.append(f"{shown_flag} {value} (the run's: {was})")
    if changed:
        raise GenError(f"--resume continues {out} as it was started, so it would ignore {'; '.join(changed)}. "
                       "Drop them to continue the run (only --steps, the new total, may change), or train a new run "
                       "with them (another --out, or --force to replace this one)")


def fixed_size(sampler, reconstruct: bool):
    """(height, width) a local image-to-image or autoencoder bundle fits every --image to, or None
    (text-to-image takes the image's own size; a served model's size is not known here)."""
    bundle = getattr(sampler, "bundle", None)
    if bundle is None or not (reconstruct or "image" in bundle.spec.required):
        return None
    return bundle.spec.input_size(bundle)


def resize_note(sizes, size) -> str:
    """' (64x64 input resized to the model's 32x32)' when a fixed-size model got images of another size:
    said on the output line, never done silently; '' otherwise."""
    other = sorted({f"{w}x{h}" for h, w in sizes if size is not None and (h, w) != tuple(size)})
    if not other:
        return ""
    return f" ({' and '.join(other)} input{'s' * (len(other) > 1)} resized to the model's {size[1]}x{size[0]})"

