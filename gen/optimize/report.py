"""optimize.json (every figure the choice rests on) and optimize.png (latency against quality, one panel
per gate: every candidate labelled, the gate drawn, the choice marked)."""

from __future__ import annotations

from pathlib import Path

from gen.optimize.gate import HIGHER_IS_BETTER, Gate

REPORT = "optimize"  # the folder inside the bundle (and the work directory) that holds both files
PSNR_CAP = 60.0
YLABELS = {"fd": "fd (lower is better)", "accuracy": "label accuracy (higher is better)",
           "psnr": f"PSNR vs the reference, dB (higher is better;\nabove {PSNR_CAP:g} drawn at {PSNR_CAP:g})",
           "features": "feature distance to the reference (lower is better)"}
# where diffusers' own images (the reference every SD figure is measured against) sit on each SD axis
REFERENCE_AT = {"psnr": PSNR_CAP, "features": 0.0}


def write_report(folder: Path, record: dict, gates: list[Gate]) -> Path:
    from gen.fileio import write_json

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "optimize.json", record)
    plot(folder / "optimize.png", record, gates)
    return folder


def plot(path: Path, record: dict, gates: list[Gate]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency, verdict, choice = record["latency"], record["verdicts"], record.get("choice")
    peer = next(iter(record.get("peer", {})), None)  # Stable Diffusion: speed-ups over diffusers' pipeline
    speed = "speedup_over_peer" if peer else "speedup"
    fig, axes = plt.subplots(1, len(gates), figsize=(6.5 * len(gates), 5), squeeze=False)
    for ax, gate in zip(axes[0], gates):
        points = {name: (summary[speed], _shown(verdict[name]["gates"][gate.text]["figure"], gate.metric))
                  for name, summary in latency.items()}
        for name, (x, y), dy in label_offsets(points):
            ok, chosen = verdict[name]["passes"], name == choice
            ax.scatter(x, y, s=320 if chosen else 45, marker="*" if chosen else "o", color="tab:green" if ok else "tab:red",
                       edgecolors="black" if chosen else "none", zorder=5 if chosen else 3)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, dy), fontsize=8)
        front = pareto(points, lower_is_better=gate.metric not in HIGHER_IS_BETTER)
        ax.plot(*zip(*front), linestyle=":", color="gray", zorder=2, label="Pareto front (nothing both faster and better)")
        limit = next(iter(verdict.values()))["gates"][gate.text]["limit"]
        ax.axhline(limit, color="gray", linestyle="--", label=f"gate {gate.text} (limit {limit:.3g})")
        if peer:  # the reference itself: diffusers' images are what every PSNR is measured against
            ax.scatter(1.0, REFERENCE_AT.get(gate.metric, limit), s=60, marker="X", color="black", zorder=4,
                       label=f"{peer}: the reference (1x)")
        final = record.get("final")
        if final and gate.text in final.get("gates", {}):
            ax.scatter(final["speedup"], final["gates"][gate.text]["figure"], s=70, marker="P", color="tab:blue",
                       zorder=4, label=f"written bundle with this host's plan: {final['speedup']:.1f}x")
        ax.set_xscale("log")
        over = f"{peer}\n(one image per call" if peer else f"{record['reference']}\n(batch {record['settings']['batch']}"
        ax.set_xlabel(f"speed-up end to end over {over}, log scale)")
        ax.set_ylabel(YLABELS[gate.metric])
        ax.set_title(f"green: passes every gate; red: fails one; star: chosen ({choice})", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"gen optimize {record['source']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _shown(figure: float, metric: str) -> float:
    """Where a figure is drawn: a PSNR above PSNR_CAP (the same sampler as the reference: equal images up to
    rounding) at the cap, so the axis stays on the candidates that differ."""
    return min(figure, PSNR_CAP) if metric == "psnr" else figure


def pareto(points: dict[str, tuple[float, float]], lower_is_better: bool = True) -> list[tuple[float, float]]:
    """The (speed-up, figure) points no other point beats on both, fastest first."""
    front, best = [], None
    for x, y in sorted(points.values(), key=lambda p: -p[0]):
        if best is None or (y < best if lower_is_better else y > best):
            front.append((x, y))
            best = y
    return front


def label_offsets(points: dict[str, tuple[float, float]]):
    """(name, point, vertical label offset in points): the first of above / below / further that keeps
    the label clear of the labels already placed near it, so neighbours' names do not overprint."""
    import math

    ys = [y for _, y in points.values()]
    span = (max(ys) - min(ys)) or 1.0
    per_point = span / 280  # about how much of the axis one point of offset is, on a 5-inch plot
    out, placed = [], []
    for name, (x, y) in sorted(points.items(), key=lambda item: item[1][0]):
        for dy in (6, -12, 16, -22, 26, -32):
            at = (math.log10(x), y + dy * per_point)
            if all(abs(at[0] - p[0]) > 0.45 or abs(at[1] - p[1]) > 11 * per_point for p in placed):
                break
        placed.append(at)
        out.append((name, (x, y), dy))
    return out
