"""gen.json, typed: the one schema every exporter writes through and every reader reads through.

A bundle's manifest is checked here, once, when it is loaded: a missing key, a value of the wrong
type or an unknown family is refused with the key's dotted name (`components.unet.files.fp32.bytes`),
not met later as a KeyError deep inside `generate`. The family-specific `sampling` section is typed
by the family's own spec (gen.runtime.families), so a new family brings its keys with it.

Schema version 1 is what wave 1 wrote; it is still read (tests/fixtures holds bundles it wrote).
Optional sections that are absent are left out when writing, so a manifest without text
conditioning looks exactly as version 1 did.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from gen.errors import GenError

SCHEMA_VERSION = 1
FORMAT = "gen-bundle"
MANIFEST = "gen.json"


@dataclass
class TensorSpec:
    """One input or output of a component; string dimensions are dynamic ("batch", "latent_height")."""

    name: str
    dtype: str
    shape: list[Union[int, str]]
    # [low, high): the values a model can take (class labels, token ids, timesteps); a value outside
    # indexes past an embedding table. Checked before any backend runs (v1 bundles lack it).
    range: Optional[list[float]] = None


@dataclass
class ExternalData:
    """The weights file beside a model over protobuf's 2 GB limit (the model names it)."""

    path: str
    bytes: int
    sha256: Optional[str] = None  # written since the typed manifest; v1 bundles have only the size


@dataclass
class ModelFile:
    path: str
    bytes: int
    sha256: str
    external_data: Optional[ExternalData] = None


@dataclass
class Component:
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    files: dict[str, ModelFile] = field(default_factory=dict)  # precision name -> file

    def signature(self) -> dict:
        """The I/O part as plain dicts, the form validation and example inputs take."""
        return {"inputs": [dataclasses.asdict(s) for s in self.inputs],
                "outputs": [dataclasses.asdict(s) for s in self.outputs]}


@dataclass
class Image:
    channels: int
    height: int
    width: int
    range: list[float] = field(default_factory=lambda: [-1.0, 1.0])
    layout: str = "NCHW"


@dataclass
class Conditioning:
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    text: Optional[bool] = None  # true for text-to-image bundles (v1 wrote it only there)


@dataclass
class Text:
    """Text conditioning: the tokenizer travels in the bundle, so a host needs no transformers."""

    tokenizer: str
    max_length: int
    pad_id: int
    hidden_size: int
    # multi-vector textual inversions: token -> "token token_1 ..." (diffusers' maybe_convert_prompt)
    expand: dict[str, str] = field(default_factory=dict)


@dataclass
class Manifest:
    family: str
    components: dict[str, Component]
    image: Image
    conditioning: Conditioning
    sampling: dict[str, Any] = field(default_factory=dict)  # typed by the family spec
    precision: str = "fp32"  # the default precision on GPUs
    parity: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)  # eager backend: family-defined paths
    # every file under `weights` with its size and sha256, checked at load like the components' files
    # (bundles exported before 2026-12-04 lack it: their eager weights are read unchecked)
    weights_files: Optional[list[ModelFile]] = None
    source: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Optional[str]] = field(default_factory=dict)
    text: Optional[Text] = None
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT

    def to_json(self) -> dict:
        return to_json(self)


def to_json(obj):
    """A dataclass tree as JSON-ready dicts; optional fields left at None are omitted, so sections a
    bundle does not have (text, external_data) do not appear at all. Plain dicts are kept as they are."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (getattr(obj, f.name) is None and f.default is None)}
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    return obj


def parse(cls, data, where: str):
    """`data` (parsed JSON) as an instance of dataclass or type `cls`, or a GenError naming the key."""
    return _parse(cls, data, where)


def _parse(tp, value, where: str):
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union:
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _parse(option, value, where)
            except GenError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise GenError(f"{where or 'manifest'} must be an object, got {_kind(value)}")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            key = f"{where}.{f.name}" if where else f.name
            if f.name not in value:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise GenError(f"lacks {key!r}")
                continue
            kwargs[f.name] = _parse(hints[f.name], value[f.name], key)
        return tp(**kwargs)
    if origin is list:
        if not isinstance(value, list):
            raise GenError(f"{where} must be a list, got {_kind(value)}")
        (item,) = typing.get_args(tp)
        return [_parse(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise GenError(f"{where} must be an object, got {_kind(value)}")
        _, item = typing.get_args(tp)
        return {str(k): _parse(item, v, f"{where}.{k}") for k, v in value.items()}
    return check_scalar(tp, value, where)


def check_scalar(tp, value, where: str):
    """int, float, str or bool, strictly: a bool is not an int here, an int is a float, floats are finite."""
    ok = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          str: lambda v: isinstance(v, str), bool: lambda v: isinstance(v, bool),
          dict: lambda v: isinstance(v, dict), list: lambda v: isinstance(v, list)}.get(tp)
    if ok is None:
        raise TypeError(f"manifest schema: unsupported type {tp!r} at {where}")
    if not ok(value):
        raise GenError(f"{where} must be {_NAMES[tp]}, got {_kind(value)} {json.dumps(value)[:40]}")
    return float(value) if tp is float else value


_NAMES = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false",
          dict: "an object", list: "a list"}


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)


def read_manifest(data, where: str) -> Manifest:
    """Check the version, then the shared schema, then the family's sampling keys."""
    from gen.runtime.families import get_family

    if not isinstance(data, dict) or isinstance(data.get("schema_version"), bool) \
            or not isinstance(data.get("schema_version"), int):
        raise GenError(f"{where} has no integer schema_version; it is not a gen bundle manifest")
    if data["schema_version"] > SCHEMA_VERSION:
        raise GenError(f"{where} has schema_version {data['schema_version']}, newer than this gen understands "
                       f"({SCHEMA_VERSION}); upgrade gen to read it")
    try:
        manifest = parse(Manifest, data, "")
        family = get_family(manifest.family)
        manifest.sampling = family.check_manifest(manifest)
    except GenError as e:
        raise GenError(f"{where}: {e}; re-export the bundle") from None
    return manifest


def write_manifest(path, manifest: Manifest) -> None:
    """Write gen.json through the schema: what an exporter writes is read back and checked first,
    so a bundle that its own readers would refuse is never written."""
    from gen.fileio import write_json

    data = manifest.to_json()
    read_manifest(json.loads(json.dumps(data)), str(path))
    write_json(path, data)
