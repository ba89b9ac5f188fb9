"""What `gen export --int8` takes, torch- and numpy-free so the CLI can show its defaults instantly."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from gen.errors import GenError

METHODS = ("minmax", "entropy", "percentile")
CALIBRATION_DEFAULTS = {"images": 64, "prompts": 8}  # --calibration when not given
# node groups (gen.export.int8): convolutions, transposed convolutions, layers with weights
# (MatMul/Gemm), and activation-by-activation matrix products (attention's scores and values)
GROUPS = ("conv", "convtranspose", "linear", "attention")


@dataclass(frozen=True)
class Int8Options:
    # images whose whole sampling runs are recorded (every step of each); None: 64, or 8 prompts for
    # text-to-image, whose UNet calls cost seconds each on a CPU (CALIBRATION_DEFAULTS)
    calibration: Optional[int] = None
    method: str = "minmax"  # ONNX Runtime calibrator: minmax, entropy or percentile
    # the node groups to quantize, pinned (--int8-groups conv,linear); empty: every combination the
    # graph has is timed and the fastest kept
    groups: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # fnmatch patterns of node names always kept float (--int8-exclude)
    # whole-run gate: int8 images vs fp32 from the same noise; 30 dB is ~3% RMS of the [-1, 1] range
    min_psnr: float = 30.0
    # a component is quantized only if int8 runs it at least this much faster than fp32 per call: 10%
    # is above the timing noise of a busy 2-core machine, and less is not worth int8's error. 0
    # quantizes whatever the speed (for size, or for a host whose int8 kernels differ from this one)
    min_speedup: float = 1.1
    seed: int = 1000  # calibration runs use seeds from here on; the gate samples seed 0, unseen
    gate_images: dict = field(default_factory=dict)  # the gate's generate() arguments (the exporter's)

    def check(self) -> None:
        if self.calibration is not None and (isinstance(self.calibration, bool) or not isinstance(self.calibration, int)
                                             or self.calibration < 1):
            raise GenError(f"--calibration must be at least 1 image, got {self.calibration!r}")
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown or (self.groups and len(set(self.groups)) != len(self.groups)):
            raise GenError(f"--int8-groups takes distinct names from {', '.join(GROUPS)}, got {','.join(self.groups)!r}")
        if self.method not in METHODS:
            raise GenError(f"--calibration-method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if isinstance(self.min_psnr, bool) or not isinstance(self.min_psnr, (int, float)) \
                or not math.isfinite(self.min_psnr) or not 0 <= self.min_psnr <= 200:
            raise GenError(f"--int8-min-psnr must be a finite number of dB in [0, 200], got {self.min_psnr!r}")
        if isinstance(self.min_speedup, bool) or not isinstance(self.min_speedup, (int, float)) \
                or not math.isfinite(self.min_speedup) or not 0 <= self.min_speedup <= 100:
            raise GenError(f"--int8-min-speedup must be a finite number in [0, 100], got {self.min_speedup!r}")
