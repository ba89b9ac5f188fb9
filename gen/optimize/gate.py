"""The quality bar a candidate must meet, relative to the teacher at its default sampling.

`fd:1.5x`      fd (the run's classifier-feature distance, gen eval) at most 1.5 times the teacher's;
`fd:15`        fd at most 15;
`accuracy:-2`  label accuracy (conditional models) at most 2 points below the teacher's.
Parsed before anything slow runs, so a typo costs nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gen.errors import GenError

METRICS = {"fd": "lower is better: the fd_<data> metric of gen eval",
           "accuracy": "label accuracy in points (conditional models), higher is better"}
EXAMPLES = "fd:1.5x (at most 1.5x the teacher's fd), fd:15 (at most 15), accuracy:-2 (within 2 points of the teacher)"
_FORM = re.compile(r"^(?P<metric>[a-z_]+):(?P<value>[+-]?\d+(?:\.\d+)?)(?P<x>x?)$")


@dataclass(frozen=True)
class Gate:
    metric: str  # a key of METRICS
    value: float
    relative: bool  # fd: a ratio of the teacher's (`1.5x`); accuracy: always points from the teacher's

    @property
    def text(self) -> str:
        return f"{self.metric}:{self.value:g}{'x' if self.relative and self.metric == 'fd' else ''}"

    def limit(self, teacher: float) -> float:
        """The worst figure that passes, given the teacher's."""
        if self.metric == "fd":
            return teacher * self.value if self.relative else self.value
        return teacher + self.value / 100.0  # accuracy: points below (value < 0) the teacher's fraction

    def passes(self, figure: float, teacher: float) -> bool:
        if not math.isfinite(figure):
            return False
        return figure <= self.limit(teacher) if self.metric == "fd" else figure >= self.limit(teacher)


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
    return Gate(metric, value, relative=bool(m["x"]) or metric == "accuracy")


def parse_gates(texts: list[str], conditional: bool) -> list[Gate]:
    """The gates, defaulting to fd:1.5x (and accuracy:-2 for a conditional teacher); accuracy on an
    unconditional teacher is refused (it has no labels to be accurate about)."""
    gates = [parse_gate(t) for t in texts] or [parse_gate("fd:1.5x"), *([parse_gate("accuracy:-2")] if conditional else [])]
    if not conditional and any(g.metric == "accuracy" for g in gates):
        raise GenError("--gate accuracy:... needs a class-conditional teacher; this one is unconditional (use fd)", "gate")
    return gates
