"""`gen optimize SOURCE --out BUNDLE`: the fastest bundle that meets a quality bar (gen.optimize)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gen.errors import GenError


def optimize(
    source: Annotated[str, typer.Argument(help="The teacher: a run directory from `gen train ddpm` (conditional or not), or a Stable Diffusion base: tiny-sd (built in, offline) or a diffusers-format folder.")],
    out: Annotated[str, typer.Option(help="Bundle directory to write (only if a candidate passes every gate).")] = "bundles/optimized",
    gate: Annotated[Optional[list[str]], typer.Option(help="Quality bar, repeatable. Digits teachers, against the teacher at its default sampling: fd:1.5x (fd at most 1.5x the teacher's), fd:15 (at most 15), accuracy:-2 (label accuracy within 2 points); default fd:1.5x, plus accuracy:-2 for a conditional teacher. Stable Diffusion, against diffusers at 25 DPM-Solver++ steps: psnr:+0 (image PSNR above the teacher's own 4-step images') or psnr:25 (at least 25 dB), features:+0 (feature distance below the teacher's 4-step images') or features:0.03; default psnr:+0 and features:+0: closer than the teacher's 4 steps in both.")] = None,
    student: Annotated[Optional[list[str]], typer.Option(help="A few-step student of SOURCE to consider (a `gen distill` run: progressive or consistency for a digits teacher; lcm-lora, or a tiny decoder from `gen distill decoder`, for Stable Diffusion), repeatable. With --student, nothing is distilled unless --distill says so.")] = None,
    distill: Annotated[Optional[str], typer.Option(help="Methods to distil students with, comma-separated, or none. Digits: progressive, consistency (default both). Stable Diffusion: lcm-lora (the default), decoder (a tiny VAE decoder). None by default when --student is given. Minutes each on a CPU.")] = None,
    work: Annotated[Optional[str], typer.Option(help="Where students, candidate bundles and measurements go (default: OUT-work). --resume continues from it.")] = None,
    n: Annotated[Optional[int], typer.Option(help="Images per quality figure, the same seeds (and prompts) for every candidate. Default: 1000 for digits (gen eval's sample size), 8 for Stable Diffusion.")] = None,
    batch: Annotated[int, typer.Option(help="Images per timed sampling call.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the scored and the timed images.")] = 0,
    int8: Annotated[bool, typer.Option(help="Also export the chosen model at int8 (calibrated, gated; minutes) for the plan to consider.")] = False,
    max_seconds: Annotated[float, typer.Option(help="Time budget of the latency race, in seconds.")] = 120.0,
    resume: Annotated[bool, typer.Option(help="Continue a search killed part-way, from --work's measurements and checkpoints.")] = False,
    force: Annotated[bool, typer.Option(help="Start the search in --work again and replace the bundle at --out (only one gen wrote).")] = False,
) -> None:
    """Compose the speed levers: the teacher's few-step scheduler (DPM-Solver++), distilled students
    (progressive, consistency), then backends and precisions through this host's plan; score every candidate's
    quality with gen eval and race their latency against the teacher; write the fastest that passes the gates.

    Writes the bundle (its defaults set to the chosen steps and scheduler, its plan inside) with
    OUT/optimize/optimize.json and optimize.png (latency vs quality, gate drawn, choice marked).
    A gate nothing meets writes nothing and names the closest candidate.

    Stable Diffusion: the teacher at 25, 8 and 4 DPM-Solver++ steps, an LCM-LoRA student at 4, 2 and 1, the
    tiny decoder where there is one; each judged and timed against diffusers' own pipeline at 25 steps.

    Example:  gen optimize runs/ddpm --out bundles/fast --gate fd:1.5x
    Then:     gen generate bundles/fast --n 16 --out fast.png   (samples as measured, with the plan)
    SD:       gen optimize tiny-sd --out bundles/fast-sd         (distils an LCM-LoRA: about 3 min)
    """
    from gen.optimize.run import optimize as run_optimize

    students = {}
    for run in student or []:
        name = Path(run).name
        if name in students or name == "teacher":
            raise GenError(f"--student {run}: two students named {name!r}; give them folders of different names", "student")
        students[name] = run
    methods = None if distill is None else () if distill == "none" else tuple(m.strip() for m in distill.split(",") if m.strip())
    import shlex
    import sys

    record = run_optimize(source, out, gate or [], students, methods, work, resume=resume, force=force, log=typer.echo,
                          command=shlex.join(["gen", *sys.argv[1:]]), batch=batch, seed=seed, int8=int8,
                          max_seconds=max_seconds, **({"n": n} if n is not None else {}))
    final, over = record["final"], next(iter(record.get("peer", {})), record["reference"])
    typer.echo(f"wrote {out}: {record['choice']}, {final['speedup']:.1f}x over {over} end to end with "
               f"this host's plan ({final['plan']}); report {out}/optimize/optimize.png")
