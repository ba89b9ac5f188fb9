"""Does `gen export --int8` take the same decision every time? Repeated on idle cores, then with a
neighbour burning one core; the decision (written / refused / undecided) and the speed figures of each
export go to one results file. The issue's rule: the same decision on idle cores, and on busy cores the
same decision or "undecided" — never the opposite.

    python benchmarks/int8_stability.py runs/ddpm --idle 3 --busy 1 --out benchmarks/results/int8_stability.json

RUN defaults to a digits DDPM trained here for --train-steps (the speed decision depends on the
architecture, which the README's main job shares; its gate on image quality may differ).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GEN = [sys.executable, "-m", "gen"]
BURN = "import time\nt = time.time()\nwhile time.time() - t < 600: pass"  # bounded: a killed parent cannot leave it burning long


def export_once(run: str, out: Path) -> dict:
    t0 = time.time()
    p = subprocess.run([*GEN, "export", run, "--out", str(out), "--int8", "--force"], capture_output=True, text=True)
    lines = (p.stdout + p.stderr).strip().splitlines()
    if p.returncode == 0:
        parity = json.loads((out / "gen.json").read_text())["parity"]["denoiser"]["ort_int8_vs_fp32"]
        decision = "refused: kept float" if "kept_float" in parity else "written"
        figure = parity.get("speed")
    elif "int8" in (lines[-1] if lines else ""):  # the export's own verdict on int8
        decision = "undecided" if "undecided" in lines[-1] else "refused"
        figure = None
    else:
        raise SystemExit(f"gen export failed for another reason: {lines[-1] if lines else p.returncode}")
    return {"decision": decision, "seconds": round(time.time() - t0, 1), "speed": figure,
            "timing_lines": [line.strip() for line in lines if "interval" in line], "last_line": lines[-1] if lines else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", nargs="?")
    ap.add_argument("--idle", type=int, default=3)
    ap.add_argument("--busy", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=1000)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "int8_stability.json"))
    args = ap.parse_args()
    report = {"command": " ".join([sys.executable, *sys.argv]), "loadavg_before": os.getloadavg(), "exports": []}
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or str(Path(tmp) / "run")
        if not args.run:
            subprocess.run([*GEN, "train", "ddpm", "--data", "digits", "--out", run, "--steps", str(args.train_steps),
                            "--quiet"], check=True, stdout=subprocess.DEVNULL)
        for i in range(args.idle + args.busy):
            busy = i >= args.idle
            burner = subprocess.Popen([sys.executable, "-c", BURN]) if busy else None
            try:
                r = export_once(run, Path(tmp) / f"b{i}")
            finally:
                if burner:
                    burner.kill()
            r["host"] = "one core burned by a neighbour" if busy else "idle"
            report["exports"].append(r)
            print(f"{r['host']}: {r['decision']}  {r['timing_lines'][-1] if r['timing_lines'] else r['last_line']}", flush=True)
    idle = {r["decision"] for r in report["exports"] if r["host"] == "idle"}
    busy = {r["decision"] for r in report["exports"] if r["host"] != "idle"}
    report["same_decision_idle"] = len(idle) == 1
    report["busy_never_opposite"] = busy <= idle | {"undecided"}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("same_decision_idle", "busy_never_opposite")}), f"-> {args.out}")


if __name__ == "__main__":
    main()
