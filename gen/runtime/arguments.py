"""Every `generate()` argument, declared once: its type, its rule, what it applies to, how it is served.

A family lists the names it accepts (gen.runtime.families); the Sampler validates values here, the
Triton pipeline config takes its request inputs from `served_spec`, the remote client checks and
encodes with `encode` and the served pipeline decodes with `decode` and then validates like the
Sampler, so an argument added here (image=, mask=, strength=, psi=) is checked and served the same
way everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gen.errors import GenError, shown

SEED_RANGE = 2**64  # numpy's default_rng takes any non-negative int; seeds are taken modulo this
INT32 = (-(2**31), 2**31 - 1)
# kind -> (served dtype, served shape)
_SERVED = {"int": ("int32", [1]), "seed": ("int64", [1]), "float": ("float32", [1]), "name": ("bytes", [1]), "choice": ("bytes", [1]),
           "texts": ("bytes", [-1]), "labels": ("int32", [-1]), "fraction": ("float32", [1]),
           "image": ("uint8", [-1, -1, -1, -1])}


@dataclass(frozen=True)
class Argument:
    name: str
    kind: str  # int | seed | float | fraction (0, 1] | name | choice (a name or its index) | texts | labels | image (uint8 NHWC)
    help: str
    applies_to: str  # for the refusal on a family that does not take it
    rule: str = ""  # what a valid value is, for the error ("at least 1")
    low: float | None = None  # smallest valid value (numbers)
    high: float | None = None  # largest valid value (numbers)
    served: str | None = None  # request input name on Triton; None: in-process only

    def _also(self) -> str:
        """The rule beyond the type, for a message that says both ("a finite number >= 0")."""
        rule = self.rule.removeprefix("an integer").removeprefix("a positive integer").strip()
        if self.rule.startswith("a positive integer"):
            rule = "at least 1"
        return f" {rule}" if rule.startswith(("in ", ">", "<")) else f", {rule}" if rule else ""

    def check(self, value):
        """The value in its canonical Python form, or a GenError naming the argument."""
        if self.kind in ("int", "seed"):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):  # True is no step count
                raise GenError(f"{self.name} must be an integer{self._also()}, got {shown(value)} "
                               f"({type(value).__name__})", self.name)
            if self.low is not None and value < self.low:
                raise GenError(f"{self.name} must be {self.rule or 'an integer'}, got {shown(value)}", self.name)
            # any integer is a seed: mapped to numpy's 64-bit range the same way in process and served
            return int(value) % SEED_RANGE if self.kind == "seed" else int(value)
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(value):
                raise GenError(f"{self.name} must be a finite number{self._also()}, got {shown(value)}", self.name)
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise GenError(f"{self.name} must be {self.rule}, got {shown(value)}", self.name)
            return float(value)
        if self.kind == "fraction":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(value) or not 0 < value <= 1:
                raise GenError(f"{self.name} must be in (0, 1], got {shown(value)}", self.name)
            return float(value)
        if self.kind == "image":
            from gen.runtime.image_input import as_uint8_nhwc

            return as_uint8_nhwc(value, self.name)
        if self.kind == "name":
            if not isinstance(value, str):
                raise GenError(f"{self.name} must be a name (a string), got {type(value).__name__}", self.name)
            return value
        if self.kind == "choice":  # one of the bundle's named values, or its index: the family checks which
            if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
                raise GenError(f"{self.name} must be a name or an index (a string or an integer), got "
                               f"{type(value).__name__}", self.name)
            return str(value)
        if self.kind == "texts":
            from gen.runtime.prompts import check_prompts

            return check_prompts(value, self.name)
        return value  # labels: checked against the bundle's classes by the family

    def served_spec(self, required: bool = False) -> dict:
        dtype, shape = _SERVED[self.kind]
        return {"name": self.served, "dtype": dtype, "shape": list(shape), "optional": not required}

    def encode(self, value) -> np.ndarray:
        """Client side: a request tensor for this argument, after the same checks as in process (the
        server checks again: this is so a bad value is not silently changed on its way there)."""
        if self.served is None:
            raise GenError(f"{self.name} is not a served input: drop it, or sample with it in process (a bundle, "
                           "not a server URL)", self.name)
        dtype, _ = _SERVED[self.kind]
        if self.kind == "texts":
            return np.array([p.encode("utf-8") for p in self.check(value)], dtype=np.object_)
        if self.kind == "image":  # uint8 NHWC, as it travels
            return self.check(value)
        if self.kind == "labels":
            given = np.asarray(value, dtype=object)  # ragged lists become lists in a 1-D array, refused below
            items = list(np.atleast_1d(given).reshape(-1))
            if given.ndim > 1 or not items or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) for v in items):
                raise GenError(f"labels must be integers, got {shown(value)}", "labels")
            value = [int(v) for v in items]
        else:
            value = self.check(value)
        if self.kind == "seed":  # the canonical seed in [0, 2**64) travels as the int64 with the same bits
            return np.array([value], dtype=np.uint64).view(np.int64)
        if self.kind in ("name", "choice"):
            return np.array([value.encode("utf-8")], dtype=np.object_)
        if dtype == "int32":  # narrowed on the wire: refuse what does not fit rather than wrap it
            values = value if isinstance(value, list) else [value]
            if min(values) < INT32[0] or max(values) > INT32[1]:
                raise GenError(f"{self.name} = {value!r} does not fit the served input '{self.served}' (32-bit)")
        return np.atleast_1d(np.asarray(value, dtype=dtype))

    def decode(self, array: np.ndarray):
        """Server side: a request tensor back to what `generate()` takes."""
        if self.kind == "image":
            return self.check(np.asarray(array))
        flat = array.reshape(-1)
        if self.kind == "labels":
            labels = flat.astype(np.int64)
            return int(labels[0]) if labels.size == 1 else labels
        if self.kind == "texts":
            return [_text(v, self.served) for v in flat]
        if flat.size != 1:
            raise GenError(f"input '{self.served}' must hold exactly one value, got shape {list(array.shape)}")
        if self.kind in ("name", "choice"):
            return _text(flat[0], self.served)
        if self.kind == "seed":
            return int(flat[0]) % SEED_RANGE
        return float(flat[0]) if self.kind in ("float", "fraction") else int(flat[0])


def _text(value, name: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise GenError(f"input '{name}' is not valid UTF-8 text") from None
    return str(value)


def _arguments(*args: Argument) -> dict[str, Argument]:
    return {a.name: a for a in args}


# n and seed every family takes; the rest only where a family lists them.
COMMON = ("n", "seed")
ARGUMENTS = _arguments(
    Argument("n", "int", "images to generate (per prompt, for text-to-image)", "every bundle",
             "a positive integer", low=1, served="n"),
    Argument("seed", "seed", "same seed, same images on every backend (any integer, taken modulo 2**64)",
             "every bundle", "an integer", served="seed"),
    Argument("prompt", "texts", "text prompt, or a list of prompts", "text-to-image bundles", served="prompt"),
    Argument("negative_prompt", "texts", "what to steer away from (with guidance > 1)", "text-to-image bundles",
             served="negative_prompt"),
    Argument("steps", "int", "diffusion sampling steps", "diffusion bundles", "at least 1", low=1, served="steps"),
    Argument("scheduler", "name", "diffusion scheduler (gen.runtime.schedulers.SCHEDULERS)", "diffusion bundles",
             served="scheduler"),
    Argument("eta", "float", "DDIM stochasticity (0 = deterministic)", "the ddim scheduler", ">= 0", low=0.0),
    Argument("labels", "labels", "class label, or one per image", "class-conditional bundles", served="label"),
    Argument("guidance", "float", "classifier-free guidance scale", "guided diffusion bundles", served="guidance"),
    Argument("classifier_scale", "float", "classifier guidance scale s: each step follows s x grad log p(labels | x_t) "
             "(0 = none)", "DDPM bundles with a noisy classifier (gen train noisy-classifier)", ">= 0", low=0.0,
             served="classifier_scale"),
    Argument("height", "int", "image height in pixels", "text-to-image bundles", served="height"),
    Argument("width", "int", "image width in pixels", "text-to-image bundles", served="width"),
    Argument("image", "image", "input image(s): a path, a PIL image or an array (uint8, or floats in [-1, 1])",
             "image-to-image bundles (Stable Diffusion: img2img and inpainting)", served="image"),
    Argument("mask", "image", "inpainting mask: white (>= 128) is repainted, black kept; the image's size",
             "Stable Diffusion bundles, with image", served="mask"),
    Argument("direction", "name", "which way to translate: AtoB (domain A to B, the default) or BtoA",
             "CycleGAN bundles", served="direction"),
    Argument("target_domain", "choice", "the domain to translate into: its name or its index (the bundle's domains)",
             "multi-domain translation bundles", served="target_domain"),
    Argument("psi", "float", "truncation: w pulled towards the mean w (1 = none, 0 = the average image)",
             "StyleGAN bundles", "in [0, 1]", low=0.0, high=1.0, served="psi"),
    Argument("mix_seed", "seed", "style mixing: the seed whose styles the layers from mix_layer on take",
             "StyleGAN bundles", "an integer", served="mix_seed"),
    Argument("mix_layer", "int", "style mixing: the first synthesis layer that reads mix_seed's styles",
             "StyleGAN bundles (with mix_seed)", "an integer >= 0", low=0, served="mix_layer"),
    Argument("interpolate", "seed", "a second seed: n images walking in w from seed's first image to this seed's",
             "StyleGAN bundles", "an integer", served="interpolate"),
    Argument("decoder", "name", "which VAE decoder makes the images: full (the default) or tiny (the bundle's distilled "
             "tiny decoder: several times faster, approximate; a preview)", "Stable Diffusion bundles", served="decoder"),
    Argument("lora", "texts", "LoRA adapter by name (gen lora add), or one per prompt ('' = none); rows with "
             "different adapters share each UNet call", "Stable Diffusion bundles exported with LoRA slots (gen export "
             "--model sd --lora-slots RANK)", served="lora"),
    Argument("lora_scale", "float", "the adapter's strength (1 = as trained, 0 = the base)", "Stable Diffusion bundles "
             "with LoRA slots, with lora", "in [-4, 4]", low=-4.0, high=4.0, served="lora_scale"),
    Argument("strength", "fraction", "how far image-to-image departs from the image: the share of the "
             "schedule run (diffusers' strength)", "image-to-image sampling", served="strength"),
)


def given(arguments: dict, takes: str) -> dict[str, tuple[Argument, object]]:
    """The arguments given (None means not given) with their declarations; an unknown name is
    refused, saying what is taken (`takes`, e.g. "this gan bundle takes n, seed, labels")."""
    out = {}
    for name, value in arguments.items():
        if value is None:
            continue
        if name not in ARGUMENTS:
            raise GenError(f"unknown generate() argument {name!r}; {takes}", name)
        out[name] = (ARGUMENTS[name], value)
    return out


def argument_in(message: str, extra=()) -> str | None:
    """The argument a message is about: gen's messages name it first ("steps must be ...", "n = 9 is
    ..."), a served pipeline's by its request input ("label 10 is out of range", "input 'n' ...").
    `extra` are more names that may come first (the demo's own keys)."""
    import re

    served = {a.served: a.name for a in ARGUMENTS.values() if a.served}
    quoted = re.search(r"input '(\w+)'", message)
    if quoted and quoted.group(1) in served:
        return served[quoted.group(1)]
    first = re.match(r"\W*(\w+)", message)
    word = first.group(1) if first else ""
    return word if word in ARGUMENTS or word in extra else served.get(word)


def class_labels(labels, n: int, num_classes: int) -> np.ndarray:
    """`labels` (one label, or one per image) as int64 [n], checked against the model's classes;
    None cycles through the classes."""
    if labels is None:
        return (np.arange(n) % num_classes).astype(np.int64)
    try:
        given = np.asarray(labels)
    except ValueError:  # a ragged list such as [[1, 2], [3]]
        raise GenError(f"labels must be one integer or a flat list of integers (one per image), got {shown(labels)}",
                       "labels") from None
    if given.ndim > 1:
        raise GenError(f"labels must be one integer or a flat list of integers (one per image), got shape "
                       f"{list(given.shape)}", "labels")
    if given.dtype.kind not in "iu" and given.size:
        raise GenError(f"labels must be integers, got {shown(labels)}", "labels")
    # one label, as a number or a one-element list, is every image's (as a served request carries it)
    arr = np.full(n, given.reshape(-1)[0], dtype=np.int64) if given.size == 1 else given.astype(np.int64)
    if arr.shape != (n,):
        raise GenError(f"labels: expected one label or {n}, got {arr.shape[0] if arr.ndim else arr.size}", "labels")
    bad = arr[(arr < 0) | (arr >= num_classes)]
    if len(bad):
        raise GenError(f"label {int(bad[0])} is out of range: this model has classes 0..{num_classes - 1}", "labels")
    return arr
