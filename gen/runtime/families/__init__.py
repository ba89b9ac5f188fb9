"""Model families, runtime side: one module per family in this package, found by name.

A family's runtime spec (torch-free) says which components its bundles have, the typed keys of
its manifest's `sampling` section, which `generate()` arguments it takes (declared once in
gen.runtime.arguments), its sampling routine, and its served request inputs and outputs. The
Sampler, bench, the Triton repository builder and the served pipeline ask the spec; none of them
branches on a family's name. Its other two halves live in gen.nets.families (how each component is
built and its ONNX signature) and gen.trainkit.families (its trainer), registered under the same
name. docs/FAMILIES.md walks through adding one.

Every module in this package that defines a `FAMILY` is a plug-in; nothing else needs editing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from gen.errors import GenError, with_article
from gen.runtime.arguments import ARGUMENTS, COMMON, given
from gen.runtime.schema import parse

_REGISTRY: dict = {}


@dataclass(frozen=True)
class Limits:
    """What one generate() call (one served request) may ask for. Enforced before any network runs,
    in process and in the served pipeline alike; over-limit calls are refused naming the limit.
    Raise one with `Sampler(..., limits={"n": 64})` or `gen serve build --max-batch 128` (n is its
    half for guided models, whose networks see the batch twice)."""

    n: int = 256  # images per call (n x prompts for text-to-image)
    steps: int = 1000  # diffusion steps
    pixels: int = 0  # height x width per image, for families whose size is an argument (0: 4x native)
    prompt_chars: int = 2000  # characters per prompt (CLIP reads 77 tokens; more only costs memory)

    def merged(self, overrides: dict | None) -> "Limits":
        if not overrides:
            return self
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise GenError(f"unknown limit {sorted(unknown)[0]!r}; limits are "
                           f"{', '.join(f.name for f in dataclasses.fields(self))}")
        for k, v in overrides.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise GenError(f"limit {k} must be a positive integer, got {v!r}")
        return dataclasses.replace(self, **overrides)


LIMIT_OPTIONS = {"n": "--max-batch", "steps": "--max-steps", "pixels": "--max-pixels", "prompt_chars": "--max-prompt-chars"}


class LimitError(GenError):
    """A request past one of the Limits: `what` was asked, `limit` is the `limit_name` limit. Its
    message says how to raise it in Python or on a server; a front end with its own option (the
    demo) says that instead."""

    def __init__(self, what: str, limit: int, limit_name: str, argument: str):
        super().__init__(f"{what} is over this model's limit of {limit}; raise it in Python with Sampler(..., "
                         f"limits={{'{limit_name}': N}}), or for a served model with `gen serve build "
                         f"{LIMIT_OPTIONS[limit_name]} N`", argument)
        self.what, self.limit, self.limit_name = what, limit, limit_name


class Family:
    """The runtime half of a family. Subclasses set the class attributes and `sample`."""

    name = ""
    components: tuple[str, ...] = ()  # what every bundle of the family has
    Sampling: type | None = None  # dataclass of manifest.sampling
    takes: tuple[str, ...] = ()  # generate() arguments beyond n and seed
    required: dict[str, str] = {}  # argument -> what to say when it is missing
    # argument -> what to say when it is given to a bundle that does not take it (else a generic line)
    refusals: dict[str, str] = {"labels": "labels given, but this bundle is unconditional"}
    limits = Limits()  # defaults; a family may lower them (big models) or derive them (pixels)
    diffusion = False  # has steps (bench sweeps them)
    example = "--n 16 --out grid.png"  # `gen generate BUNDLE ...` options to try first (printed after export)
    variable_size = False  # image size is a request argument, not fixed by the bundle
    # draws discrete values (codes) from a network's output: one draw that int8 flips changes every
    # later one, so int8 images cannot track fp32's by PSNR (the export's gate says so)
    discrete_sampling = False

    # -- the bundle ---------------------------------------------------------------------------
    def check_manifest(self, manifest):
        """The typed sampling section, after checking the components the family needs."""
        missing = [c for c in self.components if c not in manifest.components]
        if missing:
            raise GenError(f"lacks component {missing[0]!r} that every {self.name} bundle has")
        return parse(self.Sampling, manifest.sampling, "sampling") if self.Sampling else manifest.sampling

    def accepts(self, bundle) -> tuple[str, ...]:
        """The arguments this bundle takes (conditional bundles take labels, ...)."""
        return self.takes

    def guided(self, bundle) -> bool:
        """Whether one request runs its networks at twice its batch (classifier-free guidance)."""
        return False

    # -- generate() ---------------------------------------------------------------------------
    def limits_for(self, bundle, overrides: dict | None = None) -> Limits:
        limits = self.limits
        if not limits.pixels:  # 4x the bundle's native pixel count: twice its side
            limits = dataclasses.replace(limits, pixels=4 * bundle.image.height * bundle.image.width)
        return limits.merged(overrides)

    def sampling_used(self, bundle, args: dict) -> dict:
        """The sampling settings a call with bound `args` runs at, defaults filled in, for reports
        (`gen eval`'s "sampling"): here, what was given."""
        return {k: v for k, v in args.items() if k in self.takes and k not in ("labels", "image", "mask")}

    def bind(self, bundle, arguments: dict, limits: Limits | None = None) -> dict:
        """Validated arguments: unknown names, arguments this bundle does not take, bad values and
        values past `limits` are refused here, naming the argument, before any network runs.
        None means "not given"."""
        accepted = (*COMMON, *self.accepts(bundle))
        out = {}
        for name, (spec, value) in given(arguments, f"this {self.name} bundle takes {', '.join(accepted)}").items():
            if name not in accepted:
                raise GenError(self.refusal(name) or f"{name} applies to {spec.applies_to}; this is {with_article(self.name)} bundle", name)
            out[name] = spec.check(value)
        for name, message in self.required.items():
            if name not in out:
                raise GenError(message, name)
        out.setdefault("n", 1)
        out.setdefault("seed", 0)
        self.check_limits(bundle, out, limits or self.limits_for(bundle))
        self.check(bundle, out)
        return out

    def check_limits(self, bundle, args: dict, limits: Limits) -> None:
        def refuse(what, limit, name, argument=None):
            raise LimitError(what, limit, name, argument or {"pixels": "height", "prompt_chars": "prompt"}.get(name, name))

        count = self.images_per_request(args)
        if count > limits.n:
            refuse(f"n = {count}" if count == args["n"] else f"n x prompts = {count} images", limits.n, "n")
        if args.get("steps", 0) > limits.steps:
            refuse(f"steps = {args['steps']}", limits.steps, "steps")
        # an input image sets the size unless height/width do (checked here, before it is resized)
        own = args["image"].shape[1:3] if args.get("image") is not None else (bundle.image.height, bundle.image.width)
        h, w = args.get("height", own[0]), args.get("width", own[1])
        if self.variable_size and h * w > limits.pixels:
            refuse(f"height x width = {h} x {w} = {h * w} pixels", limits.pixels, "pixels")
        for name in ("prompt", "negative_prompt"):
            for p in args.get(name, ()):
                if len(p) > limits.prompt_chars:
                    refuse(f"a {name} of {len(p)} characters", f"{limits.prompt_chars} characters", "prompt_chars", name)

    def check(self, bundle, args: dict) -> None:
        """Rules across arguments or against the bundle; may normalise `args` in place."""

    def input_size(self, bundle) -> tuple[int, int]:
        """(height, width) that input images are fitted to: the output's size, unless the model changes
        it (super-resolution reads a smaller image)."""
        return bundle.image.height, bundle.image.width

    def routine(self, backend) -> Callable:
        """`routine(n, rng, args, on_step) -> images` for one Sampler; families with state to build
        once (a tokenizer) return their own object."""
        return lambda n, rng, args, on_step=None: self.sample(backend, n, rng, args, on_step)

    def sample(self, backend, n: int, rng: np.random.Generator, args: dict, on_step=None) -> np.ndarray:
        """The images; iterative families call `on_step(i, steps, x0)` after each step."""
        raise NotImplementedError

    # -- bench --------------------------------------------------------------------------------
    def example_feeds(self, bundle, component: str, batch: int) -> dict:
        """Random inputs for one component at the bundle's native size."""
        from gen.runtime.validate import example_feeds

        return example_feeds(bundle.signature(component), batch, num_classes=bundle.num_classes)

    def bench_arguments(self, steps: int | None, bundle=None) -> dict:
        """generate() arguments for a bench run at `steps` (None where the family has none) on `bundle`."""
        return {}

    # -- serving ------------------------------------------------------------------------------
    def served_inputs(self, bundle) -> list[dict]:
        names = [a for a in (*COMMON, *self.accepts(bundle)) if ARGUMENTS[a].served]
        return [ARGUMENTS[a].served_spec(required=a == "n" or a in self.required) for a in names]

    def served_outputs(self, bundle) -> list[dict]:
        img = bundle.image
        h, w = (-1, -1) if self.variable_size else (img.height, img.width)
        return [{"name": "images", "dtype": "uint8", "shape": [-1, h, w, img.channels]},
                {"name": "images_float", "dtype": "float32", "shape": [-1, img.channels, h, w]}]

    def images_per_request(self, args: dict) -> int:
        return args.get("n", 1)

    # -- previews (a step's predicted clean sample, shown while sampling) -----------------------
    def previews(self, bundle) -> bool:
        """Whether a diffusion step's x0 can be shown: pixel models' is an image; latent models need a
        cheap decoder (preview)."""
        return self.diffusion and not bundle.manifest.text

    def preview(self, backend, x0: np.ndarray) -> np.ndarray:
        """A step's x0 as images in [-1, 1] (NCHW): here x0 itself."""
        return x0

    def example_for(self, bundle) -> str:
        """`gen generate BUNDLE ...` options to try this bundle with (printed after export)."""
        return self.example

    # -- reconstruct() (autoencoders) ---------------------------------------------------------
    encoder: str | None = None  # the component reconstruct() encodes with; None: the family has no encoder

    def can_generate(self, bundle) -> bool:
        """Whether generate() can sample this bundle (an autoencoder without a prior cannot)."""
        return True

    def reconstruct(self, backend, images: np.ndarray) -> np.ndarray:
        """Images (float NCHW in [-1, 1], fitted to the model) through encoder and decoder."""
        return self.decode(backend, self.encode(backend, images))

    def argument(self, bundle, name: str) -> dict:
        """What this bundle adds to one argument's declaration for a form (its choices, read now)."""
        return {}

    def refusal(self, name: str) -> str | None:
        """What to say when `name` is given to a bundle that does not take it; None: the generic line.
        An autoencoder's input image is for reconstruct(), not generate()."""
        if name == "image" and self.encoder is not None:
            return ("image applies to image-to-image bundles; to encode and decode an image with this autoencoder use "
                    "reconstruct(images) (gen generate --reconstruct --image IN.png)")
        return self.refusals.get(name)

    def check_encoder(self, bundle) -> None:
        """reconstruct() and encode() need the autoencoder's encoder: refused before any input is read."""
        if self.encoder is None:
            raise GenError(f"reconstruct() applies to autoencoder bundles (ae, vae, vqvae); a {self.name} bundle has no "
                           "encoder", "reconstruct")
        if self.encoder not in bundle.manifest.components:
            raise GenError(f"this {self.name} bundle has no {self.encoder!r} component (exported before gen exported "
                           "encoders): re-export its run with `gen export RUN`")

    def encode(self, backend, images: np.ndarray) -> np.ndarray:
        """The encoder's latents of images (float NCHW in [-1, 1]): vectors, or a VQ-VAE's code grid."""
        bundle = backend.bundle
        self.check_encoder(bundle)
        return backend.run(self.encoder, {bundle.signature(self.encoder)["inputs"][0]["name"]: images})

    def decode(self, backend, latents: np.ndarray) -> np.ndarray:
        return backend.run("decoder", {backend.bundle.signature("decoder")["inputs"][0]["name"]: latents})


def _discover() -> None:
    if not _REGISTRY:
        from gen.plugins import RUNTIME, discover

        _REGISTRY.update(discover(__path__, __name__, "FAMILY", Family, group=RUNTIME))


def family_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get_family(name: str) -> Family:
    _discover()
    if name not in _REGISTRY:
        raise GenError(f"unknown model family {name!r}; this gen knows {', '.join(family_names())}")
    return _REGISTRY[name]
