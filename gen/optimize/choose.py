"""Which candidate: the fastest of those that pass every gate, where a near tie in speed is settled head to
head (gen.runtime.speed.settle), not by two medians. None passing is an error that names the closest."""

from __future__ import annotations

from gen.errors import GenError
from gen.optimize.gate import Gate
from gen.optimize.measure import figure


def verdicts(gates: list[Gate], quality: dict[str, dict], reference: str) -> dict[str, dict]:
    """Each candidate's gate figures: {gate text: {"figure", "limit", "passes"}}, and "passes" overall."""
    teacher = {g.text: figure(quality[reference]["metrics"], g.metric) for g in gates}
    out = {}
    for name, q in quality.items():
        checks = {}
        for g in gates:
            value = figure(q["metrics"], g.metric)
            checks[g.text] = {"figure": round(value, 4), "limit": round(g.limit(teacher[g.text]), 4),
                              "passes": g.passes(value, teacher[g.text])}
        out[name] = {"gates": checks, "passes": all(c["passes"] for c in checks.values())}
    return out


def choose(verdict: dict[str, dict], latency: dict[str, dict], calls: dict | None = None,
           max_seconds: float = 30.0) -> tuple[str, dict]:
    """The chosen candidate's name and the head-to-head figures that settled it. `calls` (name -> a
    sampling call) lets near ties race again; without it the medians decide. The reference (the
    teacher at its default) is the choice only when nothing that passes runs faster."""
    from gen.runtime.speed import FASTER, settle

    passing = [n for n in latency if verdict[n]["passes"]]
    if not passing:
        raise GenError(refusal(verdict))
    reference = next(n for n, s in latency.items() if s.get("baseline"))
    faster = {n: latency[n] for n in passing if latency[n].get("decision") == FASTER}
    if not faster:
        return reference, {}
    if calls is None:
        return max(faster, key=lambda n: faster[n]["speedup"]), {}
    return settle(faster, {n: calls[n] for n in faster}, max_seconds=max_seconds)


def refusal(verdict: dict[str, dict]) -> str:
    """No candidate passed: the closest one per gate, named with its figure and the limit."""
    lines = []
    def miss(name, gate):
        c = verdict[name]["gates"][gate]
        return abs(c["figure"] - c["limit"]) if not c["passes"] else 0.0

    for gate in next(iter(verdict.values()))["gates"]:
        best = min(verdict, key=lambda name, g=gate: miss(name, g))
        c = verdict[best]["gates"][gate]
        lines.append(f"{gate}: closest {best} at {c['figure']:g} (limit {c['limit']:g})")
    return ("no candidate meets every gate, so nothing was written; " + "; ".join(lines)
            + ". Loosen the gate, or give a better student with --student")
