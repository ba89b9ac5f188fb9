"""The bundle: a directory with a versioned manifest (gen.json) and one ONNX file per component.

Everything downstream of export reads bundles through this module, which refuses what it cannot
trust before any backend touches it: unknown schema versions, files that escape the bundle
directory, missing or truncated component files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gen.errors import GenError
from gen.fileio import read_json

SCHEMA_VERSION = 1
MANIFEST = "gen.json"
PRECISIONS = ("fp32", "fp16")


@dataclass
class Bundle:
    path: Path
    manifest: dict

    @property
    def family(self) -> str:
        return self.manifest["family"]

    @property
    def components(self) -> dict:
        return self.manifest["components"]

    @property
    def num_classes(self) -> int:
        return int(self.manifest["conditioning"].get("num_classes", 0))

    @property
    def image(self) -> dict:
        return self.manifest["image"]

    @property
    def default_precision(self) -> str:
        return self.manifest.get("precision", "fp32")

    def signature(self, component: str) -> dict:
        return self.components[component]

    def onnx_path(self, component: str, precision: str = "fp32") -> Path:
        files = self.components[component]["files"]
        if precision not in files:
            have = ", ".join(sorted(files))
            raise GenError(f"bundle {self.path} has no {precision} {component} (it has: {have}); re-export with --fp16")
        return self.resolve(files[precision]["path"])

    def external_data_path(self, component: str, precision: str = "fp32") -> Path | None:
        """The weights file beside a component over protobuf's 2 GB limit; it must stay beside the
        .onnx under this name, which the model records."""
        entry = self.components[component]["files"][precision].get("external_data")
        return self.resolve(entry["path"]) if entry else None

    def resolve(self, relative: str) -> Path:
        """A path named by the manifest, guaranteed to stay inside the bundle directory."""
        p = (self.path / relative).resolve()
        root = self.path.resolve()
        if Path(relative).is_absolute() or root not in p.parents:
            raise GenError(f"manifest {self.path / MANIFEST} names a file outside the bundle: {relative!r}")
        return p


def load_bundle(path: str | Path) -> Bundle:
    path = Path(path)
    if not path.is_dir():
        raise GenError(f"bundle not found: {path} (create one with `gen export RUN --out {path}`)")
    manifest = read_json(path / MANIFEST, "bundle manifest")
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if not isinstance(version, int):
        raise GenError(f"{path / MANIFEST} has no integer schema_version; it is not a gen bundle manifest")
    if version > SCHEMA_VERSION:
        raise GenError(
            f"{path / MANIFEST} has schema_version {version}, newer than this gen understands ({SCHEMA_VERSION}); "
            "upgrade gen to read it"
        )
    for key in ("family", "components", "image", "conditioning"):
        if key not in manifest:
            raise GenError(f"{path / MANIFEST} lacks {key!r}; re-export the bundle")
    bundle = Bundle(path, manifest)
    if "text" in manifest:  # text-to-image: prompts cannot become token ids without it
        tok = bundle.resolve(manifest["text"]["tokenizer"])
        if not tok.is_file():
            raise GenError(f"bundle {path} has no tokenizer ({manifest['text']['tokenizer']} is missing); re-export it")
    for name, comp in bundle.components.items():
        for precision, f in comp["files"].items():
            p = bundle.resolve(f["path"])
            if not p.is_file():
                raise GenError(f"bundle {path}: {name} ({precision}) file is missing: {p}")
            _check_size(path, p, f["bytes"])
            if "external_data" in f:  # weights beside a model over protobuf's 2 GB limit
                data = bundle.resolve(f["external_data"]["path"])
                if not data.is_file():
                    raise GenError(f"bundle {path}: {name} ({precision}) weights file is missing: {data}")
                _check_size(path, data, f["external_data"]["bytes"])
    return bundle


def _check_size(bundle_path: Path, p: Path, expected: int) -> None:
    if p.stat().st_size != expected:
        raise GenError(f"bundle {bundle_path}: {p.name} is truncated or modified ({p.stat().st_size} bytes, "
                       f"manifest says {expected}); re-export the bundle")
