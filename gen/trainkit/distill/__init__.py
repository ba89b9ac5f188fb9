"""`gen distill`: few-step students from a trained diffusion run, by two methods.

- progressive (Salimans & Ho 2022): halvings, each student taking in one DDIM step what its teacher
  takes in two (gen.trainkit.distill.progressive);
- consistency (Song et al. 2023, in the discrete "LCM" form of Luo et al. 2023): the student maps any
  point of the teacher's ODE trajectory to its end, sampled by the LCM scheduler at 1..8 steps
  (gen.trainkit.distill.consistency).

(Stable Diffusion's few-step LoRA, `gen distill lcm-lora`, is gen.trainkit.sd.lcm_lora: it trains an
adapter on a base rather than a run.)

A student is a DDPM run like any other (family "ddpm", v-prediction, plus a `distill` record), so
export, the runtime, bench and serving need nothing new; its manifest names its scheduler and step
count. This module holds the options and their checks only, free of torch, so `gen --help` stays light.
"""

from __future__ import annotations

import math

from gen.errors import GenError, with_article

# Each method's defaults (the CLI shows them; the distillers say why). guidance None: the teacher's own.
PROGRESSIVE = {"start_steps": 16, "halvings": 2, "steps_per_halving": 1000, "lr": 2e-4, "batch_size": 64,
               "warmup": 50, "guidance": None}
CONSISTENCY = {
    "steps": 2000,  # optimisation steps: about 7 min on 2 cores for the default digits teacher
    "skip": 20,  # the teacher's ODE step spans this many training timesteps (LCM's k: 1000 / 20 = 50 grid points)
    "solver": "ddim",  # the teacher's ODE step: ddim (1 teacher call) or heun (2, second order)
    "loss": "huber",  # pseudo-Huber (Song & Dhariwal 2023): robust to the few large errors near t = T
    "target_ema": 0.95,  # the target network's EMA decay (CD and LCM use 0.95)
    "student_steps": 4,  # the bundle's default step count (any of 1..8 samples)
    "lr": 2e-4, "batch_size": 64, "warmup": 50, "guidance": None,
}
METHODS = {"progressive": PROGRESSIVE, "consistency": CONSISTENCY}
SOLVERS = ("ddim", "heun")
LOSSES = ("huber", "l2")


def distill(teacher: str, out: str, options: dict, method: str = "progressive", resume: bool = False,
            force: bool = False, progress: bool = True):
    """Distil the DDPM run `teacher` into a student run at `out` (options: METHODS[method]'s keys, seed)."""
    from gen.trainkit.train import train_with

    if method not in METHODS:
        raise GenError(f"unknown distillation method {method!r}; choose one of {', '.join(METHODS)}")

    def fresh():
        return student_config(method, teacher, {k: v for k, v in options.items() if v is not None})

    if resume:
        _refuse_other_method(out, method)
    extend = ("a progressive student's halvings are all done: distil a new one (another --out) with more "
              "--halvings or --steps-per-halving") if method == "progressive" else None
    steps = options.get("steps") if resume else None  # --resume --steps N: the new total (consistency)
    return train_with(out, "ddpm", fresh, {"steps": steps}, resume=resume, force=force, progress=progress,
                      label=f"distill {method}", extend=extend, sources=[teacher])


def _refuse_other_method(out: str, method: str) -> None:
    """--resume continues a student with the method that started it, not another one's loop."""
    from gen.trainkit.rundir import RunDir

    run = RunDir(out)
    if not run.is_run():
        return  # RunDir.check names what is missing
    taught = run.read_config().get("distill")
    if not taught:
        raise GenError(f"--resume: {out} is not a distilled student; resume it with gen train, or drop --resume")
    if taught["method"] != method:
        raise GenError(f"--resume: {out} is a {taught['method']} student; resume it with gen distill {taught['method']}")


def student_config(method: str, teacher_path: str, options: dict):
    """The student run's config (the teacher's, re-targeted) and the teacher's data, after every check."""
    from gen.fileio import check_safetensors
    from gen.trainkit.checks import check_lr, check_positive_ints
    from gen.trainkit.data import load_dataset
    from gen.trainkit.defaults import LOOP
    from gen.trainkit.families import config_class
    from gen.trainkit.sd import refuse_sd_run
    from gen.trainkit.rundir import RunDir

    defaults = METHODS[method]
    unknown = set(options) - set(defaults) - set(LOOP)
    if unknown:
        raise GenError(f"unknown options for distill {method}: {', '.join(sorted(unknown))}")
    teacher = RunDir(teacher_path)
    tconfig = teacher.read_config()
    refuse_sd_run(tconfig["family"], teacher_path)
    if not config_class(tconfig["family"]).teaches:
        raise GenError(f"the teacher {teacher_path} is {with_article(tconfig['family'])} run; distillation needs a diffusion run "
                       "(gen train ddpm)")
    check_safetensors(teacher.weights_path)
    o = {**defaults, **options}
    _refuse_unfit_student_teacher(method, tconfig.get("distill"), o, teacher_path)
    check_positive_ints(o, ("start_steps", "halvings", "steps_per_halving", "steps", "skip", "student_steps",
                            "batch_size", "warmup"))
    check_lr(o)
    guidance = tconfig["guidance"] if o["guidance"] is None else o["guidance"]
    if not (isinstance(guidance, (int, float)) and 0 <= guidance < math.inf):
        raise GenError(f"--guidance must be a finite number >= 0, got {guidance!r}")
    if guidance != 1.0 and not tconfig.get("conditional"):
        raise GenError("--guidance applies to a class-conditional teacher; this one is unconditional")
    record = {"method": method, "teacher": str(teacher.path.resolve()), "teacher_prediction": tconfig["prediction"],
              "teacher_guidance": float(guidance)}
    train_steps, student_steps, record = _PLANS[method](o, tconfig, record)
    config = {**tconfig, "prediction": "v", "steps": train_steps, "lr": o["lr"], "batch_size": o["batch_size"],
              "warmup": o["warmup"], "sample_steps": student_steps, **{k: o[k] for k in LOOP if k in o},
              "distill": {**record, "steps": student_steps}}
    config["guidance"] = 1.0  # folded in: the student samples in one pass
    data = load_dataset(tconfig["data"], tconfig["image_size"], tconfig["channels"])
    return config, data


def _refuse_unfit_student_teacher(method: str, taught: dict | None, o: dict, teacher_path: str) -> None:
    """A student teaches only what it was trained for: a progressive student's N-step DDIM trajectory
    starts another round of halving (--start-steps N); a consistency student, or a progressive one asked
    for another method or step count, is not an ODE solver to learn from, so its own teacher is named."""
    if not taught:
        return
    n, origin = taught["steps"], taught["teacher"]
    if taught["method"] == "progressive" and method == "progressive":
        if o["start_steps"] != n:
            raise GenError(f"--start-steps {o['start_steps']}: {teacher_path} is a {n}-step progressive student, "
                           f"trained for {n}-step sampling only; continue its halving with --start-steps {n}, or "
                           f"distil from its teacher {origin}")
        return
    raise GenError(f"{teacher_path} is a {n}-step {taught['method']} student, not a teacher for {method} distillation "
                   f"(it is not trained to follow the teacher's ODE at the steps this method needs); "
                   f"distil from its teacher {origin}")


def _progressive_plan(o: dict, tconfig: dict, record: dict):
    final = o["start_steps"] / 2 ** o["halvings"]
    if final < 1 or final != int(final):
        raise GenError(f"--start-steps {o['start_steps']} cannot be halved {o['halvings']} times into whole steps; "
                       "use a power of two (16 with 2 halvings gives a 4-step student)")
    if o["start_steps"] > tconfig["timesteps"]:
        raise GenError(f"--start-steps {o['start_steps']} is more than the teacher's {tconfig['timesteps']} timesteps")
    record.update(start_steps=o["start_steps"], halvings=o["halvings"], steps_per_halving=o["steps_per_halving"],
                  scheduler="ddim")
    return o["halvings"] * o["steps_per_halving"], int(final), record


def _consistency_plan(o: dict, tconfig: dict, record: dict):
    T, skip = tconfig["timesteps"], o["skip"]
    if T % skip or skip >= T:
        divisors = [k for k in (5, 10, 20, 25, 50) if T % k == 0 and k < T]
        raise GenError(f"--skip {skip} does not divide the teacher's {T} training timesteps into a grid; "
                       f"use a divisor such as {', '.join(map(str, divisors)) or 1}")
    if o["solver"] not in SOLVERS:
        raise GenError(f"unknown --solver {o['solver']!r}; choose one of {', '.join(SOLVERS)}")
    if o["loss"] not in LOSSES:
        raise GenError(f"unknown --loss {o['loss']!r}; choose one of {', '.join(LOSSES)}")
    if not (isinstance(o["target_ema"], (int, float)) and 0 <= o["target_ema"] < 1):
        raise GenError(f"--target-ema must be in [0, 1), got {o['target_ema']!r}")
    grid = T // skip
    if o["student_steps"] > min(8, grid):
        raise GenError(f"--student-steps {o['student_steps']} is outside the student's range 1..{min(8, grid)}")
    record.update(skip=skip, solver=o["solver"], loss=o["loss"], target_ema=float(o["target_ema"]), scheduler="lcm",
                  scheduler_config={"original_inference_steps": grid, "timestep_scaling": 10.0})
    return o["steps"], o["student_steps"], record


_PLANS = {"progressive": _progressive_plan, "consistency": _consistency_plan}
