"""The bundle: a directory with a typed, versioned manifest (gen.json) and one ONNX file per component.

Everything downstream of export reads bundles through this module, which refuses what it cannot
trust before any backend touches it: unknown schema versions, manifests that do not match the
schema (gen.runtime.manifest), files that escape the bundle directory, missing or truncated
component files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gen.errors import GenError
from gen.fileio import read_json
from gen.runtime.manifest import MANIFEST, Manifest, read_manifest
from gen.runtime.precision import check_precision


@dataclass
class Bundle:
    path: Path
    manifest: Manifest

    @property
    def family(self) -> str:
        return self.manifest.family

    @property
    def spec(self):
        """The family's runtime spec (gen.runtime.families)."""
        from gen.runtime.families import get_family

        return get_family(self.manifest.family)

    @property
    def components(self) -> dict:
        return self.manifest.components

    @property
    def num_classes(self) -> int:
        return self.manifest.conditioning.num_classes

    @property
    def image(self):
        return self.manifest.image

    @property
    def sampling(self):
        return self.manifest.sampling

    @property
    def default_precision(self) -> str:
        return self.manifest.precision

    def signature(self, component: str) -> dict:
        return self.components[component].signature()

    def onnx_path(self, component: str, precision: str = "fp32") -> Path:
        files = self.components[component].files
        precision = check_precision(precision).file
        if precision not in files:
            have = ", ".join(sorted(files))
            hint = check_precision(precision).export_hint
            raise GenError(f"bundle {self.path} has no {precision} {component} (it has: {have}); re-export with {hint}")
        return self.resolve(files[precision].path)

    def external_data_path(self, component: str, precision: str = "fp32") -> Path | None:
        """The weights file beside a component over protobuf's 2 GB limit; it must stay beside the
        .onnx under this name, which the model records."""
        entry = self.components[component].files[check_precision(precision).file].external_data
        return self.resolve(entry.path) if entry else None

    def resolve(self, relative: str) -> Path:
        """A path named by the manifest, guaranteed to stay inside the bundle directory."""
        p = (self.path / relative).resolve()
        root = self.path.resolve()
        if Path(relative).is_absolute() or root not in p.parents:
            raise GenError(f"manifest {self.path / MANIFEST} names a file outside the bundle: {relative!r}")
        return p


def load_bundle(path: str | Path) -> Bundle:
    path = Path(path)
    if path.is_file() and path.name == MANIFEST:
        raise GenError(f"{path} is a bundle's manifest: give the bundle's folder, {path.parent}")
    if not path.is_dir():
        raise GenError(f"bundle not found: {path} (create one from a training run with `gen export RUN --out {path}`, "
                       f"or from a Stable Diffusion recipe with `gen export --model sd-lora --out {path}`)")
    if not (path / MANIFEST).exists() and (path / "config.json").is_file():  # the run a bundle is exported from
        raise GenError(f"{path} is a training run, not a bundle: export it first (`gen export {path} --out bundles/NAME`) "
                       "and give bundles/NAME")
    return open_bundle(path, read_json(path / MANIFEST, "bundle manifest"))


def open_bundle(path: Path, data) -> Bundle:
    """A bundle from its directory and its parsed gen.json, with every file it names checked."""
    bundle = Bundle(path, read_manifest(data, str(path / MANIFEST)))
    text = bundle.manifest.text
    if text is not None and not bundle.resolve(text.tokenizer).is_file():  # prompts cannot become ids without it
        raise GenError(f"bundle {path} has no tokenizer ({text.tokenizer} is missing); re-export it")
    for name, comp in bundle.components.items():
        for precision, f in comp.files.items():
            _check_named(bundle, f, f"{name} ({precision}) file is missing")
            if f.external_data is not None:  # weights beside a model over protobuf's 2 GB limit
                _check_named(bundle, f.external_data, f"{name} ({precision}) weights file is missing")
    for f in bundle.manifest.weights_files or ():  # the eager backend's weights, checked whichever backend runs
        _check_named(bundle, f, "eager weights file is missing", "; re-export the bundle")
    return bundle


def _check_named(bundle: Bundle, f, missing: str, fix: str = "") -> None:
    """A file the manifest names (path, bytes, sha256): present, and as exported."""
    p = bundle.resolve(f.path)
    if not p.is_file():
        raise GenError(f"bundle {bundle.path}: {missing}: {p}{fix}")
    _check_file(bundle.path, p, f.bytes, f.sha256)


def _check_file(bundle_path: Path, p: Path, size: int, sha256: str | None) -> None:
    """The size the manifest promises, then its sha256 (hashed once per file version, gen.cache)."""
    from gen.cache import cached_sha256

    if p.stat().st_size != size:
        raise GenError(f"bundle {bundle_path}: {p.name} is truncated or modified ({p.stat().st_size} bytes, "
                       f"manifest says {size}); re-export the bundle")
    if sha256 is not None and cached_sha256(p) != sha256:
        raise GenError(f"bundle {bundle_path}: {p.name} is corrupt or modified (its sha256 is not the one the "
                       "manifest records); re-export the bundle")
