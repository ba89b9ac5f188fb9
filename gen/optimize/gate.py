"""The quality bar a candidate must meet, relative to the teacher at its default sampling.

`fd:1.5x`      fd (the run's classifier-feature distance, gen eval) at most 1.5 times the teacher's;
`fd:15`        fd at most 15;
`accuracy:-2`  label accuracy (conditional models) at most 2 points below the teacher's;
`psnr:+0`      Stable Diffusion: image PSNR against the reference (diffusers at 25 DPM-Solver++ steps, same
               prompts and noise) at least that of the teacher's own 4-step DPM-Solver++ images (+N: N dB more);
`psnr:25`      the same PSNR at least 25 dB.
Parsed before anything slow runs, so a typo costs nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gen.errors import GenError

METRICS = {"fd": "lower is better: the fd_<data> metric of gen eval",
           "accuracy": "label accuracy in points (conditional models), higher is better",
           "psnr": "image PSNR in dB against the reference images (Stable Diffusion), higher is better"}
EXAMPLES = ("fd:1.5x (at most 1.5x the teacher's fd), fd:15 (at most 15), accuracy:-2 (within 2 points of the teacher); "
            "for Stable Diffusion psnr:+0 (as close to the reference as the teacher's own 4 steps) or psnr:25 (at least 25 dB)")
HIGHER_IS_BETTER = ("accuracy", "psnr")
_FORM = re.compile(r"^(?P<metric>[a-z_]+):(?P<value>[+-]?\d+(?:\.\d+)?)(?P<x>x?)$")


@dataclass(frozen=True)
class Gate:
    metric: str  # a key of METRICS
    value: float
    relative: bool  # fd: a ratio of the teacher's (`1.5x`); accuracy: always points from the teacher's;
    # psnr: dB from the teacher's few-step figure when signed (`+0`), else an absolute floor

    @property
    def text(self) -> str:
        if self.metric == "psnr" and self.relative:
            return f"psnr:{self.value:+g}"
        return f"{self.metric}:{self.value:g}{'x' if self.relative and self.metric == 'fd' else ''}"

    def limit(self, teacher: float) -> float:
        """The worst figure that passes, given the teacher's (for psnr: its own few-step images')."""
        if self.metric == "fd":
            return teacher * self.value if self.relative else self.value
        if self.metric == "psnr":
            return teacher + self.value if self.relative else self.value
        return teacher + self.value / 100.0  # accuracy: points below (value < 0) the teacher's fraction

    def passes(self, figure: float, teacher: float) -> bool:
        if not math.isfinite(figure):
            return figure == math.inf and self.metric == "psnr"  # identical images
        return figure >= self.limit(teacher) if self.metric in HIGHER_IS_BETTER else figure <= self.limit(teacher)


def parse_gate(text: str) -> Gate:
    m = _FORM.match(text.strip().lower())
    if not m or m["metric"] not in METRICS:
        known = ", ".join(METRICS)
        raise GenError(f"--gate {text!r} is not a gate gen knows; metrics: {known}; for example {EXAMPLES}", "gate")
    metric, value = m["metric"], float(m["value"])
    if metric == "fd" and not value > 0:
        raise GenError(f"--gate {text!r}: an fd bound must be positive (e.g. fd:1.5x)", "gate")
    if metric == "fd" and m["x"] and value < 1:
        raise GenError(f"--gate {text!r}: below 1x asks for better than the teacher itself; use 1x or more", "gate")
    if metric == "accuracy" and (m["x"] or value > 0):
        raise GenError(f"--gate {text!r}: accuracy takes the points a candidate may lose, as a negative number "
                       "(accuracy:-2)", "gate")
    signed = m["value"][0] in "+-"
    if metric == "psnr" and (m["x"] or (not signed and not value > 0)):
        raise GenError(f"--gate {text!r}: psnr takes dB, signed against the teacher's own 4-step images (psnr:+0) "
                       "or a floor (psnr:25)", "gate")
    return Gate(metric, value, relative=bool(m["x"]) or metric == "accuracy" or (metric == "psnr" and signed))


def parse_gates(texts: list[str], conditional: bool, sd: bool = False) -> list[Gate]:
    """The gates, defaulting to fd:1.5x (and accuracy:-2 for a conditional teacher), psnr:+0 for Stable
    Diffusion; accuracy on an unconditional teacher is refused (it has no labels to be accurate about),
    and each kind of source takes only the metrics it has."""
    if sd:
        gates = [parse_gate(t) for t in texts] or [parse_gate("psnr:+0")]
        wrong = [g.text for g in gates if g.metric != "psnr"]
        if wrong:
            raise GenError(f"--gate {wrong[0]}: a Stable Diffusion source is judged by image PSNR against the reference "
                           "(psnr:+0 or psnr:25); fd and accuracy are the digits models' metrics", "gate")
        return gates
    gates = [parse_gate(t) for t in texts] or [parse_gate("fd:1.5x"), *([parse_gate("accuracy:-2")] if conditional else [])]
    if any(g.metric == "psnr" for g in gates):
        raise GenError("--gate psnr:... judges Stable Diffusion sources; a digits teacher is judged by fd (and accuracy)", "gate")
    if not conditional and any(g.metric == "accuracy" for g in gates):
        raise GenError("--gate accuracy:... needs a class-conditional teacher; this one is unconditional (use fd)", "gate")
    return gates
