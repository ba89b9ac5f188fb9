"""The search: students distilled (or given), each model exported once, every candidate scored for quality
and raced for latency, the fastest that passes every gate chosen, and the chosen bundle written with its
defaults set to the chosen sampling and this host's plan (gen tune) inside.

Everything measured goes into WORK/measurements.json as it is measured, so `--resume` continues a killed
search where it stopped (students resume from their checkpoints). Nothing is written to --out unless a
candidate passes; then it appears whole (staged beside it, renamed in at the end)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gen.optimize.candidates import DISTILL, TEACHER, Candidate, candidates, teacher_config
from gen.optimize.gate import Gate

MEASUREMENTS = "measurements.json"


@dataclass
class Search:
    source: str
    out: Path
    work: Path
    gates: list[Gate]
    students: dict[str, str] = field(default_factory=dict)  # name -> run directory given with --student
    distill: tuple[str, ...] = DISTILL
    n: int = 1000  # images per quality figure (gen eval's default)
    batch: int = 16  # images per timed sampling call
    seed: int = 0
    int8: bool = False
    max_seconds: float = 120.0  # the latency race's budget
    tune_seconds: float = 60.0
    threads: int | None = None  # the samplers' (default: the usable cores)
    force: bool = False  # replace a bundle gen wrote at --out
    log: Callable[[str], None] = print
    record: dict = field(default_factory=dict)

    # --- the steps, in order -------------------------------------------------------------------------
    def models(self) -> dict[str, str]:
        """name -> run directory: the teacher, the students given, the students distilled here."""
        from gen.trainkit.distill import distill

        runs = {TEACHER: self.source, **self.students}
        for method in self.distill:
            path = self.work / "students" / method
            if not _finished(path):
                self.log(f"[distill] {method} student of {self.source} -> {path} (minutes; resumable) ...")
                distill(self.source, str(path), {}, method=method, resume=(path / "state.safetensors").is_file())
            runs[method] = str(path)
        return runs

    def bundles(self, runs: dict[str, str]) -> dict[str, str]:
        from gen.export.onnx_export import export_run

        out = {}
        for name, run in runs.items():
            path = self.work / "bundles" / name
            if not (path / "gen.json").is_file():
                self.log(f"[export] {name} -> {path}")
                export_run(run, str(path), progress=lambda m: None)
            out[name] = str(path)
        return out

    def quality(self, bundles: dict[str, str], todo: list[Candidate]) -> dict[str, dict]:
        from gen.optimize.measure import quality

        done = self.record.setdefault("quality", {})
        left = [c for c in todo if c.name not in done]
        t0 = time.perf_counter()
        for i, c in enumerate(left):
            eta = "" if not i else f", about {(time.perf_counter() - t0) / i * (len(left) - i) / 60:.1f} min left"
            self.log(f"[quality {i + 1}/{len(left)}{eta}] {c.name}: {self.n} images scored by gen eval ...")
            done[c.name] = quality(bundles[c.model], c.options(), self.n, self.seed)
            self.save()
        return done

    def latency_and_choice(self, bundles: dict[str, str], todo: list[Candidate]) -> str:
        """Every candidate raced against the reference (the first), then the choice among those that pass,
        near ties raced again head to head while the samplers are still warm."""
        from gen.optimize.choose import choose
        from gen.runtime.bench import environment
        from gen.runtime.host import usable_cores
        from gen.runtime.sampler import Sampler

        self.log(self.latency_message(todo))
        self.record["machine"] = {**environment(usable_cores()), "load_before_timing": list(os.getloadavg())}
        # a pinned count: threads that adapt to load mid-race would time candidates on different counts
        samplers = {c.name: Sampler(bundles[c.model], backend="ort", precision="fp32", threads=self.cores()) for c in todo}
        try:
            calls = {c.name: self.timed_call(samplers[c.name], c.options()) for c in todo}
            self.record["latency"] = self.race_candidates(calls, todo[0].name)
            choice, duels = choose(self.record["verdicts"], self.record["latency"], calls, self.max_seconds / 4)
        finally:
            for s in samplers.values():
                s.close()
        self.record.update(choice=choice, head_to_head=duels)
        self.save()
        return choice

    def cores(self) -> int:
        """The samplers' thread count, pinned (--threads, else the usable cores) so timings compare."""
        from gen.runtime.host import usable_cores

        return self.threads or usable_cores()

    def latency_message(self, todo: list[Candidate]) -> str:
        return (f"[latency] {len(todo)} candidates raced against {todo[0].name} in alternating blocks "
                f"(batch {self.batch}, ORT fp32, up to {self.max_seconds:.0f} s) ...")

    def timed_call(self, sampler, options: dict):
        """One end-to-end sampling call of a candidate, as the race times it."""
        from gen.optimize.measure import sampler_call

        return sampler_call(sampler, self.batch, self.seed, options)

    def race_candidates(self, calls: dict, baseline: str) -> dict[str, dict]:
        from gen.optimize.measure import race

        return race(calls, baseline, self.max_seconds)

    def finish(self, runs: dict[str, str], bundles: dict[str, str], chosen: Candidate) -> Path:
        """The chosen bundle, staged and renamed into --out: defaults, plan, final figures, report."""
        from gen.export.onnx_io import staged_bundle
        from gen.optimize.choose import verdicts
        from gen.optimize.measure import quality, race, sampler_call
        from gen.optimize.report import REPORT, write_report
        from gen.optimize.write import stage_bundle
        from gen.runtime.sampler import Sampler
        from gen.runtime.tune import tune

        if self.int8:
            from gen.export.onnx_export import export_run

            self.log(f"[int8] {chosen.model}: calibrated, gated int8 files (gen export --int8; minutes) ...")
            export_run(runs[chosen.model], bundles[chosen.model], precisions=("fp32", "int8"), progress=self.log)
        reference = self.record["reference"]
        with staged_bundle(self.out, self.force, sources=(self.source,)) as tmp:
            stage_bundle(bundles[chosen.model], tmp, chosen)
            self.log(f"[plan] gen tune on the chosen bundle (batch {self.batch}, {chosen.steps} steps) ...")
            plan = tune(str(tmp), n=self.batch, steps=chosen.steps, max_seconds=self.tune_seconds, log=lambda m: None)
            self.log(f"  {plan['verdict']}")
            self.log("[final] the chosen bundle with its plan, against the reference ...")
            final_q = quality(str(tmp), {}, self.n, self.seed, backend="auto", precision=None)
            teacher = Sampler(bundles[TEACHER], backend="ort", precision="fp32")
            mine, planned = Sampler(str(tmp), backend="ort", precision="fp32"), Sampler(str(tmp))
            try:
                calls = {reference: sampler_call(teacher, self.batch, self.seed, self.record["candidates"][reference]),
                         "chosen, ORT fp32": sampler_call(mine, self.batch, self.seed, {}),
                         "chosen, plan": sampler_call(planned, self.batch, self.seed, {})}
                timed = race(calls, reference, self.max_seconds / 2)
            finally:
                for s in (teacher, mine, planned):
                    s.close()
            gates = verdicts(self.gates, {reference: self.record["quality"][reference], "final": final_q}, reference)
            self.record["final"] = {**timed["chosen, plan"], "ort_fp32": timed["chosen, ORT fp32"],
                                    "reference_ms": timed[reference]["ms_per_call"], "plan": plan["verdict"],
                                    "quality": final_q, **gates["final"]}
            self.save()
            write_report(tmp / REPORT, self.record, self.gates)
            write_report(self.work / REPORT, self.record, self.gates)
        return self.out

    def candidates(self, runs: dict[str, str]) -> list[Candidate]:
        return candidates(int(teacher_config(self.source)["sample_steps"]), student_records(runs))

    def verdict_reference(self, todo: list[Candidate]) -> str:
        """Whose figures the relative gates compare with: the teacher at its default."""
        return todo[0].name

    def speedup_text(self, name: str) -> str:
        return f"{self.record['latency'][name]['speedup']:.1f}x over {self.record['reference']}"

    def save(self) -> None:
        from gen.fileio import write_json

        write_json(self.work / MEASUREMENTS, self.record)


def _finished(run: Path) -> bool:
    """A run whose checkpoint reached its configured steps (a killed one resumes instead). The step is read
    from the checkpoint's validated header; its tensors are not loaded."""
    from gen.fileio import check_safetensors
    from gen.trainkit.rundir import RunDir

    r = RunDir(run)
    if not r.weights_path.is_file() or not r.state_path.is_file():
        return False
    step = int((check_safetensors(r.state_path).get("__metadata__") or {}).get("step", -1))
    return step >= int(r.read_config()["steps"])


def student_records(runs: dict[str, str]) -> dict[str, dict]:
    from gen.fileio import read_json

    return {name: read_json(Path(run) / "config.json", "run config")["distill"]
            for name, run in runs.items() if name != TEACHER}
