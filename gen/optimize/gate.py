"""The quality bar a candidate must meet, relative to the teacher at its default sampling.

`fd:1.5x`      fd (the run's classifier-feature distance, gen eval) at most 1.5 times the teacher's;
`fd:15`        fd at most 15;
`accuracy:-2`  label accuracy (conditional models) at most 2 points below the teacher's;
`psnr:+0`      Stable Diffusion: image PSNR against the reference (diffusers at 25 DPM-Solver++ steps, same
               prompts and noise) above that of the teacher's own 4-step DPM-Solver++ images (+N: N dB more);
               strictly, so the bar's own images never pass it;
`psnr:25`      the same PSNR at least 25 dB;
`features:+0`  Stable Diffusion: feature distance to the reference (gen.optimize.sd_quality) below that of the
               teacher's own 4-step images (+N: N more), strictly too; `features:0.03` at most 0.03. With psnr:+0 the default:
               "closer than the teacher's 4 steps" in both measures, since two images can differ in PSNR and look
               alike, or match in PSNR and not.
Parsed before anything slow runs, so a typo costs nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gen.errors import GenError

METRICS = {"fd": "lower is better: the fd_<data> metric of gen eval",
           "accuracy": "label accuracy in points (conditional models), higher is better",
           "psnr": "image PSNR in dB against the reference images (Stable Diffusion), higher is better",
           "features": "feature distance to the reference images (Stable Diffusion), lower is better"}
EXAMPLES = ("fd:1.5x (at most 1.5x the teacher's fd), fd:15 (at most 15), accuracy:-2 (within 2 points of the teacher); "
            "for Stable Diffusion psnr:+0 (closer to the reference than the teacher's own 4 steps) or psnr:25 (at least 25 dB), "
            "features:+0 (closer in features than the teacher's own 4 steps) or features:0.03")
HIGHER_IS_BETTER = ("accuracy", "psnr")
# what a Stable Diffusion candidate is judged by: relative to the teacher's own few-step images when signed,
# else absolute; each with its unit and absolute form, for the refusals
SD_METRICS = {"psnr": ("dB", "a floor (psnr:25)"), "features": ("a distance", "a ceiling (features:0.03)")}
_FORM = re.compile(r"^(?P<metric>[a-z_]+):(?P<value>[+-]?\d+(?:\.\d+)?)(?P<x>x?)$")


@dataclass(frozen=True)
class Gate:
    metric: str  # a key of METRICS
    value: float
    relative: bool  # fd: a ratio of the teacher's (`1.5x`); accuracy: always points from the teacher's;
    # psnr, features: from the teacher's few-step figure when signed (`+0`), else an absolute bound

    @property
    def text(self) -> str:
        if self.metric in SD_METRICS and self.relative:
            return f"{self.metric}:{self.value:+g}"
        return f"{self.metric}:{self.value:g}{'x' if self.relative and self.metric == 'fd' else ''}"

    def limit(self, teacher: float) -> float:
        """The worst figure that passes (a relative psnr or features gate: the bound it must beat), given the
        teacher's (for psnr and features: its own few-step images')."""
        if self.metric == "fd":
            return teacher * self.value if self.relative else self.value
        if self.metric in SD_METRICS:
            return teacher + self.value if self.relative else self.value
        return teacher + self.value / 100.0  # accuracy: points below (value < 0) the teacher's fraction

    def passes(self, figure: float, teacher: float) -> bool:
        if not math.isfinite(figure):
            return figure == math.inf and self.metric == "psnr"  # identical images
        limit = self.limit(teacher)
        if self.metric in SD_METRICS and self.relative:  # "closer than the teacher's own 4 steps": strictly, so
            return figure > limit if self.metric == "psnr" else figure < limit  # those images never pass themselves
        return figure >= limit if self.metric in HIGHER_IS_BETTER else figure <= limit


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
    if metric in SD_METRICS and (m["x"] or (not signed and not value > 0)):
        unit, absolute = SD_METRICS[metric]
        raise GenError(f"--gate {text!r}: {metric} takes {unit}, signed against the teacher's own 4-step images "
                       f"({metric}:+0) or {absolute}", "gate")
    return Gate(metric, value, relative=bool(m["x"]) or metric == "accuracy" or (metric in SD_METRICS and signed))


def parse_gates(texts: list[str], conditional: bool, sd: bool = False) -> list[Gate]:
    """The gates, defaulting to fd:1.5x (and accuracy:-2 for a conditional teacher), psnr:+0 and features:+0
    for Stable Diffusion; accuracy on an unconditional teacher is refused (it has no labels to be accurate about),
    and each kind of source takes only the metrics it has."""
    if sd:
        gates = [parse_gate(t) for t in texts] or [parse_gate("psnr:+0"), parse_gate("features:+0")]
        wrong = [g.text for g in gates if g.metric not in SD_METRICS]
        if wrong:
            raise GenError(f"--gate {wrong[0]}: a Stable Diffusion source is judged by image PSNR against the reference "
                           "(psnr:+0 or psnr:25) and feature distance (features:+0); fd and accuracy are the digits "
                           "models' metrics", "gate")
        return gates
    gates = [parse_gate(t) for t in texts] or [parse_gate("fd:1.5x"), *([parse_gate("accuracy:-2")] if conditional else [])]
    sd_only = next((g for g in gates if g.metric in SD_METRICS), None)
    if sd_only is not None:
        raise GenError(f"--gate {sd_only.metric}:... judges Stable Diffusion sources; a digits teacher is judged by fd "
                       "(and accuracy)", "gate")
    if not conditional and any(g.metric == "accuracy" for g in gates):
        raise GenError("--gate accuracy:... needs a class-conditional teacher; this one is unconditional (use fd)", "gate")
    return gates
