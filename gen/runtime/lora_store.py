"""`gen lora add|list|remove`: a bundle's adapters (gen.runtime.loras), written without re-exporting.

Works on a bundle folder and on a served pipeline's folder (REPOSITORY/NAME/1, which `gen serve
build` gives the bundle's loras/): anything holding a gen.json with LoRA slots. The adapter file is
copied in and checked as copied, then the index is rewritten; both land by atomic rename, under the
folder's lock (the one export takes), so a second writer is refused and a reader sees the old index
or the new one, never half of either.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from gen.errors import GenError
from gen.runtime.loras import FOLDER, FORMAT, INDEX, Slots, check_adapter

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RUN_FILES = ("lora.safetensors", "pytorch_lora_weights.safetensors")  # a gen LoRA run's, diffusers' folder's


def _manifest(folder: Path):
    from gen.fileio import read_json
    from gen.runtime.manifest import MANIFEST, read_manifest

    if not (folder / MANIFEST).is_file():
        raise GenError(f"{folder} holds no {MANIFEST}: give a bundle folder (or a served pipeline's REPOSITORY/NAME/1)")
    return read_manifest(read_json(folder / MANIFEST, "bundle manifest"), str(folder / MANIFEST))


def _source(file: str) -> tuple[Path, dict]:
    """The adapter file, and its run's config where it is a gen run (its base)."""
    from gen.fileio import read_json

    p = Path(file)
    if p.is_dir():
        found = [p / n for n in RUN_FILES if (p / n).is_file()]
        if not found:
            raise GenError(f"FILE {file}: a folder with neither {' nor '.join(RUN_FILES)}")
        config = read_json(p / "config.json", "LoRA run config") if (p / "config.json").is_file() else {}
        return found[0], config if isinstance(config, dict) else {}
    if not p.is_file():
        raise GenError(f"FILE {file}: not found")
    return p, {}


def read_index(folder: Path) -> dict:
    from gen.fileio import read_json

    path = folder / FOLDER / INDEX
    return dict(read_json(path, "LoRA index").get("adapters") or {}) if path.is_file() else {}


def _write_index(folder: Path, adapters: dict) -> None:
    from gen.fileio import write_json

    write_json(folder / FOLDER / INDEX, {"format": FORMAT, "adapters": adapters})


def add_lora(bundle: str, file: str, name: str) -> dict:
    """Check `file` against the bundle's slots and add it as `name`; returns its index entry."""
    from gen.cache import sha256_of
    from gen.fileio import atomic_path
    from gen.outputs import output_lock

    folder = Path(bundle)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise GenError(f"--name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
    manifest = _manifest(folder)
    slots = Slots.of(manifest)
    src, run = _source(file)
    base, own = run.get("base"), manifest.source.get("base")
    if base and own and base != own:
        raise GenError(f"FILE {file} was trained on base {base!r}; this bundle's base is {own!r}")
    with output_lock(folder, "BUNDLE"):
        adapters = read_index(folder)
        if name in adapters:
            raise GenError(f"--name {name}: the bundle has an adapter of that name; `gen lora remove {bundle} {name}` "
                           "first, or choose another name")
        dest = folder / FOLDER / f"{name}.safetensors"
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
            info = check_adapter(tmp, slots)  # the copy is what is checked and hashed
            entry = {"path": dest.name, "bytes": tmp.stat().st_size, "sha256": sha256_of(tmp), "rank": info["rank"],
                     "layers": info["layers"], "slot_rank": slots.rank, "source": str(src), "base": base or own}
        _write_index(folder, {**adapters, name: entry})
    return {"name": name, **entry, "padded": info["padded"]}


def remove_lora(bundle: str, name: str) -> None:
    """Out of the index first (new requests stop finding it), then its file."""
    from gen.outputs import output_lock

    folder = Path(bundle)
    _manifest(folder)
    with output_lock(folder, "BUNDLE"):
        adapters = read_index(folder)
        if name not in adapters:
            raise GenError(f"no adapter {name!r} in {bundle}; it has: {', '.join(sorted(adapters)) or 'none'}")
        entry = adapters.pop(name)
        _write_index(folder, adapters)
        (folder / FOLDER / entry["path"]).unlink(missing_ok=True)


def list_loras(bundle: str) -> dict:
    folder = Path(bundle)
    Slots.of(_manifest(folder))
    return read_index(folder)
