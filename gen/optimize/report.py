"""optimize.json (every figure the choice rests on) and optimize.png (latency against quality, one panel
per gate: every candidate labelled, the gate drawn, the choice marked)."""

from __future__ import annotations

from pathlib import Path

from gen.optimize.gate import Gate

REPORT = "optimize"  # the folder inside the bundle (and the work directory) that holds both files


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
    fig, axes = plt.subplots(1, len(gates), figsize=(6.5 * len(gates), 5), squeeze=False)
    for ax, gate in zip(axes[0], gates):
        for name, summary in latency.items():
            check = verdict[name]["gates"][gate.text]
            ok = verdict[name]["passes"]
            ax.scatter(summary["speedup"], check["figure"], s=140 if name == choice else 40,
                       marker="*" if name == choice else "o", color="tab:green" if ok else "tab:red", zorder=3)
            ax.annotate(name, (summary["speedup"], check["figure"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        limit = next(iter(verdict.values()))["gates"][gate.text]["limit"]
        ax.axhline(limit, color="gray", linestyle="--", label=f"gate {gate.text} (limit {limit:.3g})")
        final = record.get("final")
        if final and gate.text in final.get("gates", {}):
            ax.scatter(final["speedup"], final["gates"][gate.text]["figure"], s=160, marker="P", color="tab:blue",
                       zorder=4, label=f"chosen bundle with this host's plan: {final['speedup']:.1f}x")
        ax.set_xscale("log")
        ax.set_xlabel(f"speed-up end to end over {record['reference']} (batch {record['settings']['batch']}, log scale)")
        ax.set_ylabel(("label accuracy" if gate.metric == "accuracy" else "fd (lower is better)"))
        ax.set_title(f"{gate.metric}: green passes every gate, red does not; star = choice", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"gen optimize {record['source']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
