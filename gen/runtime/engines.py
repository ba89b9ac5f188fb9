"""What a TensorRT engine is built for, decided without TensorRT: its optimisation profile (from
the bundle's manifest) and its cache key (everything that makes an engine invalid when it changes).

An engine is specific to the ONNX it came from, the precision it was built at, its min/opt/max
shapes, the TensorRT version that built it, the CUDA version and the GPU (name and compute
capability). The key hashes all of them, so a changed GPU or TensorRT version looks up another
file and is rebuilt instead of crashing deserialisation; an engine shipped with a recorded key that
does not match this host is refused by `check_engine_key`, naming what differs and the fix.
Pure Python, tested on CPU; the backend that builds and runs engines is gen.runtime.backends.trt.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from gen.errors import GenError

SPATIAL = {"height", "width"}  # pixel dims of a variable-size family (SD)
LATENT = {"latent_height", "latent_width"}  # the same through the VAE's downsampling


def profile_for(bundle, component: str, limits=None) -> dict[str, list[list[int]]]:
    """{input: [min, opt, max] shapes} for one component. Batch runs 1 .. the limit on images per
    call (twice that where guidance doubles the batch), best at one request's batch; a variable-size
    family's spatial dims run half to twice the native size (its pixel limit), best at native."""
    spec = bundle.spec
    limits = limits or spec.limits_for(bundle)
    double = 2 if spec.guided(bundle) else 1
    batch = (1, double, limits.n * double)
    native = {"height": bundle.image.height, "width": bundle.image.width}
    side = math.isqrt(limits.pixels)
    scale = getattr(bundle.sampling, "vae_scale_factor", 1)
    multiple = 8 * getattr(bundle.sampling, "unet_multiple", 1)

    def span(name: str) -> tuple[int, int, int]:
        if name == "batch":
            return batch
        pixel = name.replace("latent_", "")
        if name not in SPATIAL | LATENT:
            raise GenError(f"{component}: input dimension {name!r} has no rule for a TensorRT profile")
        lo = max(multiple, native[pixel] // 2 // multiple * multiple)
        hi = max(native[pixel], side // multiple * multiple)
        dims = (lo, native[pixel], hi)
        return tuple(d // scale for d in dims) if name in LATENT else dims

    out = {}
    for spec_in in bundle.signature(component)["inputs"]:
        shapes = [[], [], []]
        for d in spec_in["shape"]:
            lo_opt_hi = (d, d, d) if isinstance(d, int) else span(d)
            for i in range(3):
                shapes[i].append(int(lo_opt_hi[i]))
        out[spec_in["name"]] = shapes
    return out


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    precision: str
    profile: str  # canonical JSON of profile_for's result
    tensorrt: str
    cuda: str
    gpu: str
    compute_capability: str

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def file_name(self, component: str) -> str:
        return f"{component}-{self.precision}-{self.digest()[:16]}.engine"


def engine_key(onnx_sha256: str, precision: str, profile: dict, host: dict) -> EngineKey:
    """The key of one component's engine on a host ({"tensorrt", "cuda", "gpu", "compute_capability"},
    see gen.runtime.backends.trt.host_facts)."""
    return EngineKey(onnx_sha256, precision, json.dumps(profile, sort_keys=True), str(host["tensorrt"]),
                     str(host["cuda"]), str(host["gpu"]), str(host["compute_capability"]))


FIELDS = {"tensorrt": "TensorRT version", "cuda": "CUDA version", "gpu": "GPU", "compute_capability": "compute capability",
          "onnx_sha256": "ONNX file", "precision": "precision", "profile": "shape profile"}


HOST_FIELDS = ("tensorrt", "cuda", "gpu", "compute_capability")


def check_engine_key(recorded: dict, current: EngineKey, path, host_only: bool = False) -> None:
    """Refuse an engine whose recorded key is not this host's, saying what differs and what to do;
    `host_only` looks at the host's fields alone (another profile is a build, not an error)."""
    now = asdict(current)
    fields = HOST_FIELDS if host_only else tuple(now)
    differs = [f"{FIELDS[k]} {recorded.get(k)!r} here {now[k]!r}" if k not in ("onnx_sha256", "profile") else FIELDS[k]
               for k in fields if recorded.get(k) != now[k]]
    if differs:
        raise GenError(f"TensorRT engine {path} was built for another setup ({'; '.join(differs)}): engines do not move "
                       "between GPUs or TensorRT versions. Delete it and let gen rebuild it here (the trt backend "
                       "builds into its cache on first use), or rebuild it with `gen export BUNDLE --trt --force`")


def check_in_profile(component: str, profile: dict, shapes: dict) -> None:
    """Refuse input shapes the engine's profile does not cover, naming the range (TensorRT itself
    would only say that execution failed)."""
    for name, shape in shapes.items():
        lo, _, hi = profile[name]
        if len(shape) != len(lo) or any(not a <= d <= b for d, a, b in zip(shape, lo, hi)):
            raise GenError(f"{component}: input {name} of shape {list(shape)} is outside the TensorRT engine's profile "
                           f"{lo} .. {hi} (batch up to the image limit; sides from half to twice the native size); "
                           "use the ort backend for other sizes, or raise the limits and rebuild")


def cache_dir_for(bundle) -> Path:
    """Where engines and the timing cache of one bundle live: gen's cache, under the bundle's manifest hash
    (a bundle directory may be read-only on a deployment host)."""
    from gen.cache import cache_dir, sha256_of
    from gen.runtime.manifest import MANIFEST

    return cache_dir() / "trt" / sha256_of(Path(bundle.path) / MANIFEST)[:16]
