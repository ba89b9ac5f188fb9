"""What every diffusion family shares: steps, scheduler and eta, and the scheduler they make."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gen.errors import GenError
from gen.runtime.families import Family


@dataclass
class DiffusionSampling:
    scheduler_config: dict[str, Any]  # the noise schedule the model was trained on (diffusers keys)
    default_scheduler: str
    default_steps: int
    guidance: float = 1.0  # default classifier-free guidance scale


class DiffusionFamily(Family):
    diffusion = True
    takes = ("steps", "scheduler", "eta", "guidance")

    def check(self, bundle, args: dict) -> None:
        from gen.runtime.schedulers import scheduler_names

        name = args.get("scheduler") or bundle.sampling.default_scheduler
        if name not in scheduler_names():  # refused with the other arguments, before any network runs
            raise GenError(f"unknown scheduler {name!r}; choose one of {', '.join(scheduler_names())}", "scheduler")
        if args.get("eta") and name != "ddim":
            raise GenError(f"eta = {args['eta']} applies to the ddim scheduler only (this call samples with {name}): "
                           "ask for scheduler ddim, or drop eta", "eta")

    def scheduler(self, bundle, args: dict):
        """The requested scheduler with its timesteps set (bundle defaults where not given)."""
        from gen.runtime.schedulers import make_scheduler

        s = bundle.sampling
        steps = args.get("steps", s.default_steps)
        name = args.get("scheduler") or s.default_scheduler
        try:
            sched = make_scheduler(name, s.scheduler_config, **({"eta": args.get("eta", 0.0)} if name == "ddim" else {}))
        except ValueError as e:
            raise GenError(str(e), "scheduler") from None
        try:
            sched.set_timesteps(int(steps))
        except ValueError as e:
            raise GenError(str(e), "steps") from None
        return sched

    def sampling_used(self, bundle, args: dict) -> dict:
        s = bundle.sampling
        used = {**super().sampling_used(bundle, args), "scheduler": args.get("scheduler") or s.default_scheduler,
                "steps": int(args.get("steps", s.default_steps))}
        if "guidance" in self.accepts(bundle):
            used["guidance"] = self.guidance(bundle, args)
        return used

    def guidance(self, bundle, args: dict) -> float:
        return float(args.get("guidance", bundle.sampling.guidance))

    def bench_arguments(self, steps: int | None, bundle=None) -> dict:
        return {"steps": steps}
