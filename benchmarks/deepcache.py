"""Does DeepCache-style step caching pay on gen's digits DDPM? (issue 34, item 3)

    python benchmarks/deepcache.py RUN [--intervals 1,2,3,5] [--steps 50] [--scheduler ddim|dpm++] [--n 1000] [--batch 16]
                                       [--out benchmarks/results/deepcache.json]

DeepCache (Ma et al. 2023) reuses a UNet's deep features across neighbouring denoising steps: every
`interval`-th step runs the whole UNet and keeps what enters its last (full-resolution) up block; the
steps between recompute only the shallow path (conv_in, the first down block's resnets, the last up
block, the output head) on that cached feature. Here it wraps the run's own UNet2DModel on the eager
backend of gen's shipped Sampler (its numpy DDIM, the same seeds gen eval uses), so the figures are what
the lever would give before any export work:

- quality: gen eval's fd (and label accuracy for a conditional run) at each interval, n images, seed 0;
- speed: one sampling call (batch, steps) per interval, raced against interval 1 (the plain UNet) in
  alternating blocks (gen.runtime.speed.Race): each speed-up with its 90% interval;
- the shallow path's share of one UNet call, timed alone against the full call;
- beside them, what gen optimize already has for the same teacher: its 1-step consistency student
  (docs/RESULTS.md "gen optimize"), so the lever is judged in the composition, not alone.

Run only on idle cores (uptime's load is recorded before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class DeepCacheDenoiser:
    """Wraps gen's DenoiserComponent(UNet2DModel) with the cache; a new sampling run (the timestep going
    up, or another batch size) starts with a full call."""

    def __init__(self, component, interval: int):
        import torch

        self.torch, self.component, self.unet, self.interval = torch, component, component.unet, interval
        self.calls, self.last_t, self.cache = 0, None, None
        blocks = self.unet.down_blocks[0]
        if getattr(blocks, "attentions", None) or hasattr(blocks, "skip_conv") or hasattr(self.unet.up_blocks[-1], "skip_conv"):
            raise SystemExit("this sketch handles plain DownBlock2D / UpBlock2D outer blocks only")

    def _emb(self, sample, timestep, class_labels):
        u = self.unet
        t = timestep if timestep.ndim else timestep[None]
        t = t * self.torch.ones(sample.shape[0], dtype=t.dtype)
        emb = u.time_embedding(u.time_proj(t).to(sample.dtype))
        if u.class_embedding is not None:
            emb = emb + u.class_embedding(class_labels).to(sample.dtype)
        return emb

    def _head(self, h, skips, emb):
        u = self.unet
        h = u.up_blocks[-1](h, tuple(skips), emb)
        return u.conv_out(u.conv_act(u.conv_norm_out(h)))

    def __call__(self, sample, timestep, class_labels=None):
        u = self.unet
        t = float(timestep.flatten()[0])
        new_run = self.last_t is None or t > self.last_t or self.cache is None or self.cache.shape[0] != sample.shape[0]
        self.last_t = t
        full = new_run or self.calls % self.interval == 0
        self.calls = 0 if new_run else self.calls
        self.calls += 1
        emb = self._emb(sample, timestep, class_labels)
        h = u.conv_in(sample)
        if not full:  # shallow: the full-resolution skips only, the deep feature from the cache
            skips = [h]
            for resnet in u.down_blocks[0].resnets:
                h = resnet(h, emb)
                skips.append(h)
            return self._head(self.cache, skips, emb)
        skips = (h,)
        for block in u.down_blocks:
            h, res = block(hidden_states=h, temb=emb)
            skips += res
        if u.mid_block is not None:
            h = u.mid_block(h, emb)
        for block in u.up_blocks[:-1]:
            res, skips = skips[-len(block.resnets):], skips[:-len(block.resnets)]
            h = block(h, res, emb)
        self.cache = h
        return self._head(h, skips, emb)


def sampler_with(run: str, interval: int):
    """gen's shipped Sampler over the run's weights on the eager backend, its denoiser cached."""
    import torch

    from gen.runtime.backends.eager import EagerBackend
    from gen.runtime.bundle import Bundle
    from gen.runtime.sampler import Sampler
    from gen.trainkit.rundir import RunDir

    r = RunDir(run)
    config, nets, modules = r.build_components()
    bundle = Bundle(r.path, nets.manifest(config))
    if interval > 1:
        class Cached(torch.nn.Module):  # what the eager backend calls; the UNet stays a submodule (its weights)
            def __init__(self, component):
                super().__init__()
                self.component, self.cached = component, DeepCacheDenoiser(component, interval)

            def forward(self, sample, timestep, class_labels=None):
                return self.cached(sample, timestep, class_labels)

        modules = {**modules, "denoiser": Cached(modules["denoiser"])}
    return config, Sampler(bundle, backend=EagerBackend(bundle, "cpu", "fp32", None, modules=modules))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a `gen train ddpm` run (the README main job's runs/ddpm)")
    ap.add_argument("--intervals", default="1,2,3,5")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--scheduler", default="ddim", help="the run's sampler: ddim (its default) or dpm++ (its few-step shortcut)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "deepcache.json"))
    args = ap.parse_args()
    import torch

    from gen.runtime.speed import Race
    from gen.trainkit.eval.evaluate import _evaluate

    torch.set_num_threads(args.threads)
    intervals = [int(k) for k in args.intervals.split(",")]
    load_before = [round(x, 2) for x in os.getloadavg()]
    record = {"command": " ".join(["python", *sys.argv]), "machine": {"cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "threads": args.threads, "load_before": load_before},
              "run": args.run, "steps": args.steps, "scheduler": args.scheduler, "n": args.n, "batch": args.batch, "quality": {}}
    samplers = {}
    for k in intervals:
        config, samplers[k] = sampler_with(args.run, k)
        t0 = time.perf_counter()
        with torch.inference_mode():
            result = _evaluate(args.run, config, samplers[k], args.n, 0, {"steps": args.steps, "scheduler": args.scheduler},
                               None, lambda m: None)
        record["quality"][k] = {m: v for m, v in result["metrics"].items() if m.startswith(("fd_", "label_acc"))}
        print(f"interval {k}: {record['quality'][k]} ({time.perf_counter() - t0:.0f} s)", flush=True)

    def call(k):
        def go():
            with torch.inference_mode():
                samplers[k].generate(n=args.batch, seed=0, steps=args.steps, scheduler=args.scheduler)
        return go

    race = Race({f"interval {k}": call(k) for k in intervals}, f"interval {intervals[0]}", 1.0, max_seconds=args.max_seconds)
    record["speed"] = race.run(lambda m: print(m, flush=True))
    record["speed"]["baseline_ms_per_call"] = round(1e3 * sorted(race.baseline_seconds)[len(race.baseline_seconds) // 2], 2)
    record["shallow_share"] = shallow_share(args.run, args.batch)
    record["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k in ("quality", "speed", "shallow_share")}, indent=1))


def shallow_share(run: str, batch: int) -> dict:
    """One shallow call against one full call of the same UNet, raced: the cost a cached step still pays."""
    import torch

    from gen.runtime.speed import Race
    from gen.trainkit.rundir import RunDir

    config, nets, modules = RunDir(run).build_components()
    c = config
    cached = DeepCacheDenoiser(modules["denoiser"], 10**9)
    x = torch.randn(batch, c["channels"], c["image_size"], c["image_size"])
    t = torch.tensor(500)
    labels = torch.zeros(batch, dtype=torch.long) if cached.unet.class_embedding is not None else None
    with torch.inference_mode():  # a full call through the wrapper is the UNet itself (it also fills the cache)
        parity = float((cached(x, t, labels) - modules["denoiser"](x, t, labels)).abs().max())

        def full():
            with torch.inference_mode():
                modules["denoiser"](x, t, labels)

        def shallow():
            with torch.inference_mode():
                cached.last_t = 501.0  # same run, not a refresh step
                cached.calls = 1
                cached(x, t, labels)
    summary = Race({"full": full, "shallow": shallow}, "full", 1.0, max_seconds=30).run()["shallow"]
    return {"full_call_parity_max_abs": parity, "shallow_speedup_per_call": summary["speedup"], "interval": summary["interval"],
            "shallow_share_of_full": round(1 / summary["speedup"], 3)}


if __name__ == "__main__":
    main()
