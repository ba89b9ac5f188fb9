"""`gen optimize` for a Stable Diffusion base: the teacher (the base) with DPM-Solver++ at 25, 8, 5 and 4 steps,
an LCM-LoRA student at 4, 2 and 1 steps (guidance folded in: one UNet row per image), and the distilled
tiny decoder where there is one, each scored by image PSNR and feature distance against diffusers' own
pipeline at 25 DPM-Solver++ steps (gen.optimize.sd_quality) and raced end to end in one set of
alternating blocks with that pipeline as a contender, so every speed-up over it is a ratio from one run.

The race's baseline is gen's own teacher at 25 steps (the fallback when nothing faster passes, since a
diffusers pipeline is not a bundle); the speed-ups over diffusers are each candidate's ratio divided by
diffusers' ratio in the same blocks. Same work directory, --resume and staging rules as the digits
search (gen.optimize.search), whose steps this reuses where they are the same."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.optimize.candidates import TEACHER, Candidate
from gen.optimize.search import Search
from gen.optimize.sd_quality import REFERENCE_NAME, REFERENCE_SCHEDULER, REFERENCE_STEPS

TINY_SD = "tiny-sd"
LCM, DECODER = "lcm-lora", "decoder"  # what --distill makes for a Stable Diffusion source
DISTILL_SD = (LCM,)  # the default: the decoder is opt-in (on a random-weight VAE it cannot pass; RESULTS)
# the teacher's own shortcuts: DPM-Solver++ at these counts (5: on tiny-sd the fastest that is closer than 4 steps
# in both PSNR and features, where a 1-step LCM student is closer in PSNR only)
TEACHER_STEPS = (REFERENCE_STEPS, 8, 5, 4)
FEW = Candidate(TEACHER, 4, REFERENCE_SCHEDULER)  # the teacher's 4-step images: what relative psnr gates compare to
STUDENT_STEPS = (4, 2, 1)
# the LCM-LoRA distilled here trains longer than `gen distill lcm-lora`'s 300-step default: on tiny-sd the
# 300-step student's 1-step images sat 0.3 dB below the teacher's own 4-step DPM-Solver++ (27.2 vs 27.5 dB
# against the 25-step reference), the 1500-step one 0.3 dB above (27.8 dB); about 3 min on 2 cores there
LCM_SEARCH_STEPS = 1500
REFERENCE_FILE = "reference.npy"
# the last race's figure is the one reported (x over diffusers), not a decision: a threshold-1 race stops at 5
# blocks once decided, which left a 13-53x interval on tiny-sd; 15 blocks (the Race's cap) within its budget
FINAL_BLOCKS = 15


def is_sd_source(source: str) -> bool:
    """tiny-sd, or a diffusers-format Stable Diffusion folder (model_index.json)."""
    return source == TINY_SD or (Path(source) / "model_index.json").is_file()


def base_of(source: str) -> str | None:
    """The base as gen.recipes takes it: None for the built-in tiny-sd, else the folder."""
    return None if source == TINY_SD else source


def sd_candidates(students: dict[str, str], tiny: bool) -> list[Candidate]:
    """The reference (gen's teacher at 25 DPM-Solver++ steps) first; students sample with their own
    scheduler (LCM) and guidance (1); with a tiny decoder, the few-step ones once more through it."""
    out = [Candidate(TEACHER, s, REFERENCE_SCHEDULER) for s in TEACHER_STEPS]
    out += [Candidate(name, s) for name, kind in students.items() if kind == LCM for s in STUDENT_STEPS]
    if tiny:
        out += [Candidate(c.model, c.steps, c.scheduler, "tiny") for c in out if c.steps <= 4]
    return out


def student_kind(run: str, base: str | None) -> str:
    """LCM (a `gen distill lcm-lora` run of this base) or DECODER (a `gen distill decoder` run); else refused."""
    from gen.fileio import read_json
    from gen.recipes.lcm import LCM_FAMILY

    path = Path(run) / "config.json"
    config = read_json(path, "run config") if path.is_file() else {}
    family = config.get("family") if isinstance(config, dict) else None
    if family == LCM_FAMILY:
        want = base or TINY_SD
        if str(config.get("base")) != str(want) and Path(str(config.get("base"))).resolve() != Path(want).resolve():
            raise GenError(f"--student {run} is an LCM-LoRA of {config.get('base')}, not of {want}", "student")
        return LCM
    if family == "tiny-decoder":
        return DECODER
    raise GenError(f"--student {run} is neither a `gen distill lcm-lora` run nor a `gen distill decoder` run "
                   f"(its family: {family!r}); for a Stable Diffusion source those are the students", "student")


@dataclass
class SdSearch(Search):
    """The digits search's record, work directory and staging, with Stable Diffusion's models and figures."""

    size: int | None = None  # image size (default: the base's native size)
    kinds: dict[str, str] = field(default_factory=dict)  # student name -> LCM or DECODER
    tiny: bool = False
    pipeline: object = field(default=None, init=False, repr=False)  # diffusers' reference, loaded once (diffusers())

    def models(self) -> dict[str, str]:
        from gen.trainkit.sd.lcm_lora import distill_lcm_lora

        base = base_of(self.source)
        self.kinds = {name: student_kind(run, base) for name, run in self.students.items()}
        runs = {TEACHER: self.source, **self.students}
        if LCM in self.distill:
            path = self.work / "students" / LCM
            if not (path / "lora.safetensors").is_file():
                self.log(f"[distill] LCM-LoRA of {self.source}, {LCM_SEARCH_STEPS} steps -> {path} (minutes) ...")
                distill_lcm_lora(base, "digits", str(path), {"steps": LCM_SEARCH_STEPS}, force=True, progress=False)
            runs[LCM], self.kinds[LCM] = str(path), LCM
        return runs

    def bundles(self, runs: dict[str, str]) -> dict[str, str]:
        """The teacher's bundle, one per LCM student (the LoRA fused), and the tiny decoder on each:
        distilled from the teacher's bundle (--distill decoder) or given."""
        from gen.export.sd_export import export_sd
        from gen.export.tiny_decoder import add_tiny_decoder

        base, out = base_of(self.source), {}
        quiet = lambda m: None  # noqa: E731
        for name, run in runs.items():
            if name != TEACHER and self.kinds[name] != LCM:
                continue
            path = self.work / "bundles" / name
            if not (path / "gen.json").is_file():
                self.log(f"[export] {name} -> {path}")
                if name == TEACHER:
                    export_sd(TINY_SD if base is None else "sd", str(path), base=base, progress=quiet)
                else:
                    export_sd("sd-lora", str(path), base=base, lora=run, progress=quiet)
            out[name] = str(path)
        decoders = [run for name, run in runs.items() if name != TEACHER and self.kinds[name] == DECODER]
        if DECODER in self.distill:
            from gen.trainkit.sd.tiny_decoder import distill_decoder

            path = self.work / "students" / DECODER
            if not (path / "weights.safetensors").is_file():
                self.log(f"[distill] tiny decoder of {out[TEACHER]}'s vae_decoder -> {path} (minutes) ...")
                distill_decoder(out[TEACHER], str(path), {}, force=True, progress=False)
            decoders.append(str(path))
        if len(decoders) > 1:
            raise GenError("give one tiny decoder (--student or --distill decoder), not several", "student")
        self.tiny = bool(decoders)
        for bundle in out.values():
            if decoders and not (Path(bundle) / "tiny_decoder.onnx").is_file():
                add_tiny_decoder(bundle, decoders[0], progress=quiet)
        return out

    def candidates(self, runs: dict[str, str]) -> list[Candidate]:
        return sd_candidates(self.kinds, self.tiny)

    def speedup_text(self, name: str) -> str:
        return f"{self.record['latency'][name]['speedup_over_peer']:.1f}x over {REFERENCE_NAME}"

    def size_and_guidance(self, bundles: dict[str, str]) -> tuple[int, float]:
        from gen.runtime.bundle import load_bundle

        teacher = load_bundle(bundles[TEACHER])
        return (self.size or teacher.image.height), float(teacher.sampling.guidance)

    def diffusers(self, bundles: dict[str, str]):
        """diffusers' pipeline for the base (gen.optimize.sd_quality.Reference), loaded once a search: it
        draws the reference images and runs in both races."""
        from gen.optimize.sd_quality import Reference

        if self.pipeline is None:
            size, guidance = self.size_and_guidance(bundles)
            self.pipeline = Reference(base_of(self.source), size, guidance, self.cores())
        return self.pipeline

    @property
    def timed_item(self):
        """The one prompt and seed every timed call draws."""
        from gen.optimize.sd_quality import items

        return items(1, self.seed)[0]

    def quality(self, bundles: dict[str, str], todo: list[Candidate]) -> dict[str, dict]:
        """The reference images (diffusers, computed once, kept in --work), then each candidate's figures."""
        from gen.optimize.sd_quality import candidate_images, items, score
        from gen.runtime.sampler import Sampler

        size, guidance = self.size_and_guidance(bundles)
        todo_items = items(self.n, self.seed)
        path = self.work / REFERENCE_FILE
        if path.is_file():
            reference = np.load(path, allow_pickle=False)
        else:
            self.log(f"[reference] {REFERENCE_NAME}, guidance {guidance:g}, {size} px: {self.n} images ...")
            reference = self.diffusers(bundles).images(todo_items)
            _save_npy(path, reference)
        done = self.record.setdefault("quality", {})
        left = [c for c in todo if c.name not in done]
        t0 = time.perf_counter()
        for i, c in enumerate(left):
            eta = "" if not i else f", about {(time.perf_counter() - t0) / i * (len(left) - i) / 60:.1f} min left"
            self.log(f"[quality {i + 1}/{len(left)}{eta}] {c.name}: {self.n} images against the reference ...")
            with Sampler(bundles[c.model], backend="ort", precision="fp32", threads=self.cores()) as s:
                done[c.name] = {"metrics": score(candidate_images(s, todo_items, size, c.options()), reference)}
            self.save()
        return done

    def verdict_reference(self, todo: list[Candidate]) -> str:
        """Relative psnr gates compare with the teacher's own 4-step DPM-Solver++ images."""
        return FEW.name

    def latency_and_choice(self, bundles: dict[str, str], todo: list[Candidate]) -> str:
        """The digits search's race, one image per call, with diffusers' pipeline as one more contender."""
        self.diffusers(bundles)  # loaded before the race's hooks use it
        return super().latency_and_choice(bundles, todo)

    def latency_message(self, todo: list[Candidate]) -> str:
        return (f"[latency] {len(todo)} candidates and {REFERENCE_NAME} raced against {todo[0].name} in alternating "
                f"blocks (one {self.pipeline.size} px image per call, ORT fp32, up to {self.max_seconds:.0f} s) ...")

    def timed_call(self, sampler, options: dict):
        return _call(sampler, self.timed_item, self.pipeline.size, options)

    def race_candidates(self, calls: dict, baseline: str) -> dict[str, dict]:
        """The candidates and diffusers in one race; each candidate's speed-up over diffusers added."""
        from gen.optimize.measure import race

        reference, item = self.pipeline, self.timed_item
        timed = race({**calls, REFERENCE_NAME: lambda: reference(item)}, baseline, self.max_seconds)
        self.record["peer"] = {REFERENCE_NAME: timed.pop(REFERENCE_NAME)}
        return _over_peer(timed, self.record["peer"][REFERENCE_NAME])

    def finish(self, runs: dict[str, str], bundles: dict[str, str], chosen: Candidate) -> Path:
        """The chosen bundle staged with its defaults, this host's plan, and a last race against diffusers."""
        from gen.export.onnx_io import staged_bundle
        from gen.optimize.choose import verdicts
        from gen.optimize.measure import race
        from gen.optimize.report import REPORT, write_report
        from gen.optimize.sd_quality import candidate_images, items, score
        from gen.optimize.write import stage_bundle
        from gen.runtime.sampler import Sampler
        from gen.runtime.tune import tune

        reference = self.diffusers(bundles)
        size, item, todo_items = reference.size, self.timed_item, items(self.n, self.seed)
        with staged_bundle(self.out, self.force, sources=(self.source,)) as tmp:
            stage_bundle(bundles[chosen.model], tmp, chosen)
            self.log(f"[plan] gen tune on the chosen bundle ({chosen.steps} steps) ...")
            plan = tune(str(tmp), n=1, steps=chosen.steps, max_seconds=self.tune_seconds, log=lambda m: None)
            self.log(f"  {plan['verdict']}")
            self.log(f"[final] the chosen bundle with its plan, against {REFERENCE_NAME} ...")
            planned = Sampler(str(tmp), threads=self.cores())
            mine = Sampler(str(tmp), backend="ort", precision="fp32", threads=self.cores())
            try:
                final_q = {"metrics": score(candidate_images(planned, todo_items, size, {}),
                                            np.load(self.work / REFERENCE_FILE, allow_pickle=False))}
                timed = race({REFERENCE_NAME: lambda: reference(item), "chosen, ORT fp32": _call(mine, item, size, {}),
                              "chosen, plan": _call(planned, item, size, {})}, REFERENCE_NAME, self.max_seconds / 2,
                             min_blocks=FINAL_BLOCKS)
            finally:
                planned.close()
                mine.close()
            quality = {FEW.name: self.record["quality"][FEW.name], "final": final_q}
            gates = verdicts(self.gates, quality, FEW.name)
            self.record["final"] = {**timed["chosen, plan"], "ort_fp32": timed["chosen, ORT fp32"],
                                    "reference_ms": timed[REFERENCE_NAME]["ms_per_call"], "plan": plan["verdict"],
                                    "quality": final_q, **gates["final"]}
            self.save()
            write_report(tmp / REPORT, self.record, self.gates)
            write_report(self.work / REPORT, self.record, self.gates)
        return self.out


def _call(sampler, item, size: int, options: dict):
    """One end-to-end call: one prompt, one image, as the reference runs it."""
    return lambda: sampler.generate(item.prompt, n=1, seed=item.seed, height=size, width=size, **options)


def _over_peer(timed: dict[str, dict], peer: dict) -> dict[str, dict]:
    """Each candidate's summary with its speed-up over diffusers added: its ratio over the baseline divided
    by diffusers' ratio over the same baseline, blocks alike (the interval likewise, from the ends)."""
    scale = 1.0 / peer["speedup"]
    return {name: {**s, "speedup_over_peer": round(s["speedup"] * scale, 3),
                   "interval_over_peer": [round(v * scale, 3) for v in s["interval"]]} for name, s in timed.items()}


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Written whole or not at all (a killed search leaves no half file for --resume to read)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)
