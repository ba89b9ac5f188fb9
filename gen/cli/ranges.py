"""The range of every numeric option, in one table, applied to every command before Typer builds it.

`declare_ranges(app)` gives each int/float option of each command its range from RANGES (by option
name, or `command.option` where one command differs): stated at the end of its --help, and checked
while the command line is parsed, so before any work (a textual-inversion run at --resolution 100000
is refused, not started), nan included, as a one-line GenError naming the flag. A numeric option with no entry fails
tests/cli/test_option_ranges.py, so a new option cannot arrive unbounded. Finer checks (a multiple of
8, a power of two, lr > 0) stay where they are. The options that take text a model reads (TEXT) get
the one text check the library uses too (gen.runtime.prompts.check_text: valid UTF-8, bounded length).
"""

from __future__ import annotations

import copy
import typing
from typing import Annotated

import typer

from gen.errors import GenError

SEED = (0, 2**32 - 1)  # a training seed: numpy's legacy generators take seeds below 2**32
SAMPLING_SEED = (0, 2**64 - 1)  # generate() takes any integer modulo 2**64; the command line, that range
COUNT = (1, 10**7)  # optimisation steps, checkpoint intervals: large, but not a typo's worth of hours
WEIGHT = (0, 10**4)  # loss weights and penalties
FRACTION = (0, 1)
WIDTH = (1, 4096)  # channels, latent and embedding dimensions
THREADS = (1, 1024)
PORT = (1, 65535)

RANGES: dict[str, tuple[float, float]] = {
    "seed": SEED, "generate.seed": SAMPLING_SEED, "eval.seed": SAMPLING_SEED, "mix_seed": SAMPLING_SEED,
    "steps": COUNT, "steps_per_halving": COUNT, "checkpoint_every": COUNT, "sample_every": COUNT, "r1_every": COUNT,
    "max_images": COUNT,
    "batch_size": (1, 4096),
    "lr": (0, 10),  # > 0 is checked with the other training options (check_lr)
    "image_size": (8, 1024), "resolution": (8, 2048), "height": (8, 4096), "width": (1, 4096), "grid": (1, 256),
    "n_critic": (1, 100), "beta": WEIGHT, "latent_dim": WIDTH, "z_dim": WIDTH, "w_dim": WIDTH, "mapping_layers": (1, 32),
    "r1_gamma": WEIGHT, "ema_beta": FRACTION, "codebook_size": (2, 65536), "code_dim": WIDTH, "commitment": WEIGHT,
    "ema_decay": FRACTION, "dead_code_threshold": (0, 10**6), "prior_dim": WIDTH, "prior_layers": (1, 64),
    "prior_heads": (1, 64), "prior_dropout": FRACTION, "classifier_width": WIDTH, "classifier_scale": (0, 1000),
    "l1_weight": WEIGHT, "gan_weight": WEIGHT, "adv_weight": WEIGHT, "perceptual_weight": WEIGHT, "cycle_weight": WEIGHT, "identity_weight": WEIGHT, "domain_weight": WEIGHT, "blocks": (1, 64),
    "pool_size": (0, 10**4), "rank": (1, 1024), "num_class_images": (1, 10**4), "prior_loss_weight": WEIGHT,
    "num_vectors": (1, 64),  # each vector is a token of the text encoder's 77
    "start_steps": (2, 10**4), "halvings": (1, 20), "skip": (1, 1000), "student_steps": (1, 1000),
    "target_ema": FRACTION, "guidance": (0, 100),
    # sampling and evaluation
    "n": (1, 4096), "generate.width": (8, 4096), "eval.n": (1, 10**6), "generate.steps": (1, 10**4), "eval.steps": (1, 10**4), "psi": FRACTION,
    "strength": FRACTION, "mix_layer": (0, 64), "frames": (1, 4096), "eta": (0, 10), "label": (0, 10**6),
    "threads": THREADS,
    # export
    "lora_scale": (-10, 10), "lora_slots": (0, 256), "calibration": (1, 10**4), "int8_min_psnr": (0, 200), "int8_min_speedup": (0, 100),
    "opset": (1, 100), "tolerance": (0, 10),  # the exporter names its supported opsets
    # tune: an hour of timing is past any bundle's need; a plan for more than 256 images a call, a typo
    "min_psnr": (0, 200), "threshold": (1, 10), "max_seconds": (10, 3600), "tune.n": (1, 256), "tune.steps": (1, 1000),
    # optimize: gen eval needs 10 images to fit its statistics (the digits search refuses fewer); the batch is one timed sampling call's
    "optimize.n": (1, 10**6), "optimize.batch": (1, 4096), "optimize.seed": SAMPLING_SEED,
    # distill decoder: latent crops up to SD's largest; sampling runs and photos to record; a held-out share
    "crop": (4, 512), "images": (0, 10**5), "prompts": (0, 10**4), "sample_steps": (1, 1000), "held_out": (0.01, 0.9),
    # bench, demo, serve
    "requests": (1, 10**6), "repeats": (1, 10**4), "warmup": (0, 10**4), "port": PORT, "http_port": PORT,
    "grpc_port": PORT, "concurrency": (1, 1024), "queue": (0, 10**5), "max_body_mb": (0.1, 1024),
    "max_batch": (1, 4096), "instances": (1, 256), "max_steps": (1, 10**4), "max_pixels": (64, 2**26),
    "max_prompt_chars": (1, 10**6),  # the default cap is 2000 (gen.runtime.families.Limits); a server may raise it
    "timeout": (0.1, 86400), "watch": (0, 86400),  # 0: no watching
}


# the options that take text a model reads (not paths, names or choices): valid UTF-8, and capped at the
# prompt length (True) or, for a prompt to sample with, held to the model's own limit (a server may raise it)
TEXT = {"prompt": False, "negative_prompt": False, "instance_prompt": True, "class_prompt": True, "token": True,
        "init_token": True}


def numeric(annotation) -> bool:
    """int or float, optional or not (a bool is neither here)."""
    return any(a in (int, float) for a in (typing.get_args(annotation) or (annotation,)))


def range_of(command: str, name: str) -> tuple[float, float] | None:
    return RANGES.get(f"{command}.{name}", RANGES.get(name))


def declare_ranges(app, prefix: str = "") -> None:
    """Give every numeric option of every command of `app` (and its sub-apps) its RANGES entry.

    Annotations are resolved once here, each option's info copied (aliases such as Seed are shared
    between commands) with its check added, and put back resolved, so Typer reads these."""
    for info in app.registered_commands:
        command = info.name or info.callback.__name__.replace("_", "-")
        hints = typing.get_type_hints(info.callback, include_extras=True)
        for name, hint in hints.items():
            if typing.get_origin(hint) is not Annotated:
                continue
            base, *extras = typing.get_args(hint)
            if numeric(base):
                extras = [_bounded(e, range_of(prefix + command, name)) for e in extras]
            elif name in TEXT:
                extras = [_checked(e, _text(TEXT[name])) for e in extras]
            hints[name] = Annotated[(base, *extras)]
        info.callback.__annotations__ = hints
        signature = getattr(info.callback, "__signature__", None)  # a generated command (gen.cli.train_families)
        if signature is not None:
            info.callback.__signature__ = signature.replace(parameters=[
                p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()])
    for group in app.registered_groups:
        declare_ranges(group.typer_instance, f"{prefix}{group.name}.")


def _bounded(info, bounds):
    """The option's info with its range checked (a GenError naming the flag) and stated in its help."""
    if bounds is None:
        return info
    lo, hi = bounds

    def within(flag: str, value):
        if not (lo <= value <= hi):  # nan fails both comparisons
            raise GenError(f"{flag} must be from {lo} to {hi}, got {value}")

    return _checked(info, within, f"[{lo} to {hi}]")


def _text(capped: bool):
    def check(flag: str, value: str) -> None:
        from gen.runtime.prompts import check_text

        check_text(value, flag) if capped else check_text(value, flag, None)

    return check


def _checked(info, check, note: str = ""):
    """A copy of an option's info whose callback runs `check(flag, value)` on a value given or defaulted
    (None aside), with `note` at the end of its help."""
    if not hasattr(info, "callback") or info.callback is not None:
        return info
    info = copy.copy(info)
    info.help = f"{info.help or ''} {note}".strip()

    def callback(param: typer.CallbackParam, value):
        if value is not None:
            check(max(param.opts, key=len), value)
        return value

    info.callback = callback
    return info
