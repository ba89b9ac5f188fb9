"""LoRA adapters as data: a bundle's `loras/` folder, read with numpy (no torch, never a pickle).

A bundle exported with adapter slots (`gen export --model sd --lora-slots RANK`) has a component
whose inputs are the adapted layers' factors (gen.nets.lora_slots). Adapters live beside it:

    loras/index.json         name -> file, bytes, sha256, rank, alpha scale, where it came from
    loras/NAME.safetensors   the adapter as given (diffusers or PEFT keys)

`gen lora add` checks a file against the slots and writes both (the file first, then the index,
each atomically, under the bundle's lock). Readers re-read the index when its stat changes, so a
served pipeline sees an adapter added while it runs; each file is hash-checked once, when loaded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen.errors import GenError

FOLDER = "loras"
INDEX = "index.json"
FORMAT = "gen-loras"
COMPONENT = "unet_lora"  # the slot component; lora_down_<k> / lora_up_<k> inputs
# key suffixes -> role: diffusers' (lora.down / lora.up) and PEFT's (lora_A / lora_B)
ROLES = {".lora.down.weight": "down", ".lora.up.weight": "up", ".lora_A.weight": "down", ".lora_B.weight": "up",
         ".alpha": "alpha"}
PREFIXES = ("unet.", "base_model.model.")


@dataclass(frozen=True)
class Slots:
    """What a bundle's slot component adapts: its layers, their (in, out) sizes and the slot rank."""

    layers: list
    sizes: list  # (in, out) per layer
    rank: int

    @classmethod
    def of(cls, manifest) -> Slots:
        if COMPONENT not in manifest.components:
            raise GenError("this bundle has no LoRA slots (no unet_lora component); export it with them: `gen export "
                           "--model sd --lora-slots RANK ...` (or fuse one adapter: --model sd-lora --lora FILE)", "lora")
        shapes = {s.name: s.shape for s in manifest.components[COMPONENT].inputs}
        layers = list(manifest.sampling.lora_layers)
        sizes = [(shapes[f"lora_down_{k}"][1], shapes[f"lora_up_{k}"][2]) for k in range(len(layers))]
        return cls(layers, sizes, int(manifest.sampling.lora_rank))


def _layer_keys(header: dict, path) -> dict[str, dict[str, str]]:
    """layer -> {down, up[, alpha]: key}; text-encoder keys and unknown layouts refused."""
    out: dict[str, dict[str, str]] = {}
    for key in header:
        if key == "__metadata__":
            continue
        if key.startswith(("text_encoder", "te_", "lora_te")):
            raise GenError(f"lora: {path} also adapts the text encoder ({key}); adapter slots hold UNet layers only: "
                           "fuse it instead (gen export --model sd-lora --lora FILE)", "lora")
        role = next((r for suffix, r in ROLES.items() if key.endswith(suffix)), None)
        if role is None:
            raise GenError(f"lora: {path} has a key gen does not read as a LoRA factor: {key!r} (expected diffusers' "
                           "'unet.LAYER.lora.down.weight' or PEFT's 'LAYER.lora_A.weight')", "lora")
        layer = key[: -len(next(s for s, r in ROLES.items() if key.endswith(s)))]
        for prefix in PREFIXES:
            layer = layer.removeprefix(prefix)
        out.setdefault(layer, {})[role] = key
    return out


def check_adapter(path, slots: Slots) -> dict:
    """A safetensors LoRA checked against the slots from its header alone: every layer one of the
    slots' (same base: the layer sizes match), down [r, in] and up [out, r] with r <= the slots' rank.
    Returns {rank, layers, padded}."""
    from gen.fileio import check_safetensors

    header = check_safetensors(path)  # a pickle is refused here, before anything is read
    keys = _layer_keys(header, path)
    if not keys:
        raise GenError(f"lora: {path} holds no LoRA factors", "lora")
    where = {name: k for k, name in enumerate(slots.layers)}
    ranks = set()
    for layer, roles in keys.items():
        if layer not in where:
            raise GenError(f"lora: {path} adapts {layer!r}, which is not one of this bundle's {len(slots.layers)} slot "
                           f"layers (attention projections such as {slots.layers[0]}); an adapter for another "
                           "base, or for other target layers", "lora")
        if "down" not in roles or "up" not in roles:
            raise GenError(f"lora: {path} has no {'down' if 'down' not in roles else 'up'} factor for {layer}", "lora")
        (r, fan_in), (fan_out, r2) = header[roles["down"]]["shape"], header[roles["up"]]["shape"]
        want_in, want_out = slots.sizes[where[layer]]
        if (fan_in, fan_out) != (want_in, want_out) or r != r2:
            raise GenError(f"lora: {path} does not fit this bundle's base: {layer} is {want_in} -> {want_out} here, "
                           f"the adapter's factors are [{r}, {fan_in}] and [{fan_out}, {r2}] (an adapter for another "
                           "base model)", "lora")
        ranks.add(r)
    rank = max(ranks)
    if rank > slots.rank:
        raise GenError(f"lora: {path} has rank {rank}, over this bundle's slot rank {slots.rank}; re-export the "
                       f"bundle with --lora-slots {rank} (or more)", "lora")
    return {"rank": rank, "layers": len(keys), "padded": rank < slots.rank}


def read_factors(path, slots: Slots) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per slot layer (down [in, R], up [R, out]) with alpha / rank folded into up, zero-padded to the
    slots' rank R; layers the adapter leaves alone are zeros (exactly the base)."""
    from safetensors.numpy import load_file

    check_adapter(path, slots)
    tensors = load_file(str(path))
    keys = _layer_keys(dict.fromkeys(tensors), path)
    out = []
    for layer, (fan_in, fan_out) in zip(slots.layers, slots.sizes):
        down, up = np.zeros((fan_in, slots.rank), np.float32), np.zeros((slots.rank, fan_out), np.float32)
        roles = keys.get(layer)
        if roles:
            a, b = tensors[roles["down"]].astype(np.float32), tensors[roles["up"]].astype(np.float32)
            r = a.shape[0]
            alpha = float(tensors[roles["alpha"]].reshape(-1)[0]) / r if "alpha" in roles else 1.0
            down[:, :r], up[:r] = a.T, b.T * np.float32(alpha)
        out.append((down, up))
    return out


class Adapters:
    """One bundle folder's adapters: the index re-read when its stat changes, each file loaded and
    hash-checked once. Thread-safe (a served pipeline's requests may share it)."""

    def __init__(self, root: Path, slots: Slots):
        self.root, self.slots = Path(root), slots
        self._lock = threading.Lock()
        self._stat, self._index, self._loaded = None, {}, {}

    def index(self) -> dict:
        from gen.fileio import read_json

        path = self.root / FOLDER / INDEX
        with self._lock:
            try:
                st = path.stat()
                stat = (st.st_ino, st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                stat = None
            if stat != self._stat:
                data = read_json(path, "LoRA index") if stat else {"adapters": {}}
                self._index, self._stat = dict(data.get("adapters") or {}), stat
                self._loaded = {k: v for k, v in self._loaded.items() if k in self._index}  # removed ones let go
            return self._index

    def names(self) -> list[str]:
        return sorted(self.index())

    def factors(self, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
        from gen.cache import cached_sha256

        entry = self.index().get(name)
        if entry is None:
            have = ", ".join(self.names()) or "none: add one with `gen lora add BUNDLE FILE --name NAME`"
            raise GenError(f"lora: unknown adapter {name!r}; this bundle's adapters: {have}", "lora")
        with self._lock:
            if self._loaded.get(name, (None,))[0] == entry["sha256"]:
                return self._loaded[name][1]
        path = self.root / FOLDER / entry["path"]
        if not path.is_file() or cached_sha256(path) != entry["sha256"]:
            raise GenError(f"lora: adapter {name!r} ({path}) is missing or modified (its sha256 is not the one "
                           f"{FOLDER}/{INDEX} records); add it again with `gen lora add`", "lora")
        factors = read_factors(path, self.slots)
        with self._lock:
            self._loaded[name] = (entry["sha256"], factors)
        return factors

    def feeds(self, rows: list[str], scale: float) -> dict[str, np.ndarray]:
        """The slot inputs for a batch whose row i runs adapter rows[i] ("" = none: zeros) at `scale`."""
        zero = [(np.zeros((i, self.slots.rank), np.float32), np.zeros((self.slots.rank, o), np.float32))
                for i, o in self.slots.sizes]
        per_name = {name: self.factors(name) if name else zero for name in dict.fromkeys(rows)}
        out = {}
        for k in range(len(self.slots.layers)):
            out[f"lora_down_{k}"] = np.stack([per_name[r][k][0] for r in rows])
            out[f"lora_up_{k}"] = np.stack([per_name[r][k][1] * np.float32(scale) for r in rows])
        return out


_STORES: dict[tuple, Adapters] = {}
_STORES_LOCK = threading.Lock()


def adapters_of(bundle) -> Adapters:
    """The bundle folder's adapter store, one per folder and process."""
    slots = Slots.of(bundle.manifest)
    key = (str(Path(bundle.path).resolve()), tuple(slots.layers), slots.rank)
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = Adapters(bundle.path, slots)
        return _STORES[key]
