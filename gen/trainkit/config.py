"""Typed training configs: one dataclass per family, torch-free, declared once.

Each field carries its default, its help text and its rule (`option(...)`); the class carries what
the family needs of the world (`data`: plain images, pairs or two unpaired domains; `labels`: it can
train class-conditional; `teaches`: it can teach a few-step student). From it come:

- `gen train NAME`'s options and --help (gen.cli.train_commands builds the command from the fields,
  without importing torch),
- validation, each error naming the flag to fix (`TrainConfig.validate`),
- the run's saved `config.json` (the fields, then the data's facts: size, channels, classes),
- what data loading and `gen eval` do with a run (asked of the capabilities, never guessed from keys).

A subclass changes a default by assigning it (`steps: int = 3000`): the help and rule are inherited
from the base's field of the same name. `trainer` names the torch-side class as "module:Class",
imported only when training starts.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from dataclasses import dataclass, field
from typing import ClassVar

from gen.errors import GenError, flag
from gen.trainkit.defaults import LOOP  # the loop's defaults, shared with the later stages' commands

POSITIVE = "positive"  # counts: whole numbers >= 1 (steps, widths); a bool is not a count
NON_NEGATIVE = "non-negative"  # loss weights, thresholds, warm-up counts: a negative weight trains away from the goal
FRACTION = "fraction"  # EMA decays, dropout rates: in [0, 1)
LEARNING_RATE = "learning-rate"  # positive and finite: 0 trains nothing, inf or NaN trains NaN weights
RULES = (POSITIVE, NON_NEGATIVE, FRACTION, LEARNING_RATE)

IMAGES, PAIRED, UNPAIRED = "images", "paired", "unpaired"  # the data a family trains on
DATA_HELP = ("'digits' (bundled 8x8 scikit-learn digits), 'faces' (scikit-image's 100 lfw_subset faces at 16x16, "
             "unlabelled), 'photos' (32x32 colour crops of scikit-image's photos, labelled by photo) or a folder of "
             "images; sub-folders are class labels.")


def option(default=None, help: str = "", rule: str | None = None, choices: tuple = (), cli: bool = True,
           show_default: bool = True, negatable: bool = False, bounds: tuple | None = None):
    """A config field: `help` is the CLI's text (its default appended unless `show_default` is off),
    `rule` one of RULES, `choices` the allowed values, `cli=False` a field set only in Python or by
    another option, `negatable` a --x/--no-x flag whose unset value (None) means "decide from the data",
    `bounds` (low, high) the closed range of a number only its family has (stated in --help and checked
    while the command line is parsed, like gen.cli.ranges' table, and by `validate` in Python)."""
    if rule is not None and rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}")
    meta = {"help": help, "rule": rule, "choices": tuple(choices), "cli": cli, "show_default": show_default,
            "negatable": negatable, "bounds": bounds}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """What every family's run has: the loop's options. Families subclass it with their own fields."""

    name: ClassVar[str] = ""  # the family's name, shared with its runtime and nets specs
    trainer: ClassVar[str] = ""  # "module:Class" of the torch-side Trainer (gen.trainkit.trainer.Trainer)
    summary: ClassVar[str] = ""  # the command's help: a first line, then examples
    data: ClassVar[str] = IMAGES  # IMAGES, PAIRED ((input, target) pairs) or UNPAIRED (two domains)
    data_default: ClassVar[str] = "digits"
    data_help: ClassVar[str] = DATA_HELP
    labels: ClassVar[bool] = False  # has --conditional (class labels from the data's sub-folders)
    teaches: ClassVar[bool] = False  # a diffusion model that can teach a few-step student (gen distill)
    stages: ClassVar[dict] = {}  # a later stage's name -> "module:Class" of its trainer (config["stage"])
    # "module:function" scoring a run in `gen eval` in place of the default (samples' fd, translations' PSNR),
    # called as function(run_path, config, sampler, progress) -> the result dict
    evaluation: ClassVar[str] = ""
    # "module:function" loading the family's data in place of `data`'s loader (data the family defines, such as
    # several labelled domains), called as function(spec, image_size, channels) -> Dataset
    loader: ClassVar[str] = ""
    min_image_size: ClassVar[int] = 0  # smaller images are upscaled to this unless --image-size is given

    steps: int = option(1000, "Optimisation steps; with --resume, the new total", POSITIVE)
    batch_size: int = option(64, "Batch size", POSITIVE)
    lr: float = option(1e-3, "Learning rate", LEARNING_RATE)
    seed: int = option(LOOP["seed"], "Seed for weights, batches and noise: same seed, same run.", show_default=False)
    sample_every: int = option(LOOP["sample_every"], "Write a sample grid to RUN/samples/ every N steps.", POSITIVE, show_default=False)
    checkpoint_every: int = option(LOOP["checkpoint_every"], "Write a resumable checkpoint every N steps.", POSITIVE, show_default=False)
    log_every: int = option(LOOP["log_every"], "A metrics.jsonl record every N steps.", POSITIVE, cli=False)

    # -- declaration ---------------------------------------------------------------------------------
    @classmethod
    def specs(cls) -> dict[str, dict]:
        """Each field's default, type and metadata, the metadata inherited where a subclass only
        changed the default."""
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            meta = dict(f.metadata) or next((dict(base.__dataclass_fields__[f.name].metadata) for base in cls.__mro__[1:]
                                             if f.name in getattr(base, "__dataclass_fields__", {})
                                             and base.__dataclass_fields__[f.name].metadata), {})
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out[f.name] = {"default": default, "type": hints[f.name], **{"help": "", "rule": None, "choices": (),
                                                                       "cli": True, "show_default": True,
                                                                       "negatable": False, "bounds": None, **meta}}
        return out

    @classmethod
    def defaults(cls) -> dict:
        return {name: s["default"] for name, s in cls.specs().items()}

    @classmethod
    def evaluator(cls):
        """The function `evaluation` names (torch-side, imported only when `gen eval` runs)."""
        module, _, attr = cls.evaluation.partition(":")
        return getattr(importlib.import_module(module), attr)

    @classmethod
    def load_data(cls, spec: str, image_size: int | None = None, channels: int | None = None):
        """The family's own data, by the function `loader` names (torch-free; imported when data is loaded)."""
        module, _, attr = cls.loader.partition(":")
        return getattr(importlib.import_module(module), attr)(spec, image_size, channels)

    @classmethod
    def trainer_class(cls, stage: str | None = None):
        ref = cls.trainer if stage is None else cls.stages.get(stage)
        if not ref:
            raise GenError(f"{cls.name} has no training stage {stage!r}" if stage else f"{cls.name} names no trainer")
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)

    # -- building and checking -------------------------------------------------------------------------
    @classmethod
    def from_options(cls, given: dict) -> "TrainConfig":
        """The config of the options given (None: not given, the default holds), completed by the
        family's rules for defaults that depend on other options, then checked."""
        unknown = set(given) - set(cls.specs())
        if unknown:
            raise GenError(f"unknown options for {cls.name}: {', '.join(sorted(unknown))}")
        config = cls(**{k: v for k, v in given.items() if v is not None})
        config.complete(given)
        return config

    def complete(self, given: dict) -> None:
        """Family rules for defaults that depend on other options (WGAN-GP's 5 critic steps)."""

    @classmethod
    def model_inputs(cls, config: dict, inputs, targets):
        """What the model reads of held-out (input, target) pairs when `gen eval` scores a paired run:
        the inputs by default (super-resolution reads its targets shrunk instead)."""
        return inputs

    def validate(self, values: dict | None = None) -> None:
        """Every rule of every field, the flag named in the error. `values`: the run config being
        checked (fields plus the data's facts), by default this config's own fields."""
        values = dataclasses.asdict(self) if values is None else values
        specs = self.specs()
        by_rule = lambda rule: [k for k, s in specs.items() if s["rule"] == rule and k in values]
        for key in by_rule(POSITIVE):
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise GenError(f"{flag(key)} must be a positive integer, got {v!r}")
        if values.get("batch_size", 2) < 2:
            raise GenError(f"--batch-size must be at least 2 (batch statistics need two samples), got {values['batch_size']}")
        for key, v in values.items():  # --lr inf or --beta nan would train NaN weights
            if isinstance(v, float) and not math.isfinite(v):
                raise GenError(f"{flag(key)} must be a finite number, got {v}")
        for key in by_rule(LEARNING_RATE):
            v = values[key]
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and 0 < v < math.inf):
                raise GenError(f"{flag(key)} must be a positive finite number, got {v!r}")
        for key in by_rule(NON_NEGATIVE):
            if isinstance(values[key], (int, float)) and values[key] < 0:
                raise GenError(f"{flag(key)} must be >= 0, got {values[key]}")
        for key in by_rule(FRACTION):
            if isinstance(values[key], (int, float)) and not 0 <= values[key] < 1:
                raise GenError(f"{flag(key)} must be in [0, 1), got {values[key]}")
        for key, s in specs.items():
            if s["bounds"] and isinstance(values.get(key), (int, float)) and not s["bounds"][0] <= values[key] <= s["bounds"][1]:
                raise GenError(f"{flag(key)} must be from {s['bounds'][0]} to {s['bounds'][1]}, got {values[key]}")
            if s["choices"] and key in values and values[key] is not None and values[key] not in s["choices"]:
                raise GenError(f"unknown {flag(key)} {values[key]!r}; choose one of {', '.join(map(str, s['choices']))}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_config(config: TrainConfig, data, data_spec: str) -> dict:
    """The run's config.json: the family's fields, then what the data says (size, channels, classes)."""
    if getattr(config, "conditional", False) and not config.labels:
        raise GenError(f"{config.name} trains unconditional models only; drop --conditional")
    if getattr(config, "conditional", False) and data.num_classes < 2:
        raise GenError(f"--conditional needs labelled data (class sub-folders); {data_spec} has none")
    out = config.as_dict()
    out.update(family=config.name, data=data_spec, image_size=data.image_size, channels=data.channels - data.input_channels,
               num_classes=data.num_classes, class_names=data.class_names)
    if data.input_channels:  # paired data: what the model reads, beside what it makes
        out["input_channels"] = data.input_channels
    config.validate(out)
    size = out["image_size"]
    if size < 8 or size & (size - 1):
        raise GenError(f"--image-size must be a power of two >= 8 for these nets, got {size}")
    return out
