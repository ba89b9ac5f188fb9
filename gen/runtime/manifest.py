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
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from gen.errors import GenError
from gen.runtime.schema import parse, to_json

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
        """The I/O part as plain dicts, the form validation and example inputs take. Built once per
        component (every network call checks its feeds against it; asdict per call cost a tenth of a
        small UNet's step) and shared: callers read it, never change it."""
        cached = self.__dict__.get("_signature")
        if cached is None:
            cached = self.__dict__["_signature"] = {"inputs": [dataclasses.asdict(s) for s in self.inputs],
                                                    "outputs": [dataclasses.asdict(s) for s in self.outputs]}
        return cached


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
