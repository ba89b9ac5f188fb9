"""`gen tune`: measure every backend x precision this host offers on a bundle, keep the fastest that
draws the same images, and write it as this host's plan (gen.runtime.plan).

1. Contenders: ort fp32 (the baseline, what runs without a plan), ort int8 (bundles exported with
   --int8), openvino fp32 / bf16 (CPUs with bf16 instructions) / int8 (ORT's QDQ files) / int8-bf16 (the
   same files, their float nodes in bf16: CPUs with bf16 instructions) / int8-ov
   (NNCF's, --int8-openvino), each only where it can run here
   (the reason is recorded for the others).
2. Quality first: each contender samples the same seeded images as the baseline; one under `min_psnr`
   is out before anything is timed.
3. Per component: the components' real inputs, recorded from that sampling call, are timed on every
   contender in rotating blocks (gen.runtime.speed.Race), giving each component its fastest choice; a
   mix of choices becomes one more contender (checked for quality like the rest).
4. End to end: the whole sampling call, every contender left against the baseline in rotating blocks.
   The plan is the fastest contender whose speed-up interval clears `threshold`; when none does (too
   close, or too noisy to tell) the plan says so and keeps the baseline. Where a runner-up's interval
   reaches the leader's median, the two race head to head (gen.runtime.speed.settle) and the runner-up
   takes the plan only when decided faster, so the choice does not flip on one run's noise. The host's load during the
   timing is recorded beside the figures.
"""

from __future__ import annotations

import time
from typing import Callable


from gen.errors import GenError
from gen.runtime.plan import DEFAULT, SCHEMA, backend_for, manifest_digest, write_plan

CANDIDATES = (("ort", "fp32"), ("ort", "int8"), ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8"),
              ("openvino", "int8-bf16"), ("openvino", "int8-ov"))
MIXED = "mixed"


def label(choice: tuple[str, str]) -> str:
    return f"{choice[0]}/{choice[1]}"


def available(bundle, backends: list[str] | None) -> tuple[list[tuple[str, str]], list[dict]]:
    """The contenders that can run here, and why each other one cannot."""
    from gen.runtime.backends import create_backend

    usable, skipped = [], []
    for choice in CANDIDATES:
        if backends and choice[0] not in backends:
            continue
        try:
            create_backend(choice[0], bundle, "cpu", choice[1], 1).close()
            bundle.onnx_path(next(iter(bundle.components)), choice[1])
            usable.append(choice)
        except GenError as e:
            skipped.append({"contender": label(choice), "reason": str(e)})
    if DEFAULT not in usable:
        raise GenError("gen tune needs onnxruntime for its baseline (ort fp32): pip install 'gen[runtime]'")
    return usable, skipped


def tune(bundle_path: str, n: int = 1, steps: int | None = None, threads: int | None = None, min_psnr: float = 30.0,
         threshold: float = 1.05, max_seconds: float = 120.0, backends: list[str] | None = None, seed: int = 0,
         log: Callable[[str], None] = print) -> dict:
    """Measure, decide, write this host's plan; returns it (with every figure)."""
    from gen.runtime.backends.recording import RecordingBackend
    from gen.runtime.bundle import load_bundle
    from gen.runtime.host import LoadWatch, fingerprint, usable_cores
    from gen.runtime.quality import check_images, psnr
    from gen.runtime.sampler import Sampler
    from gen.runtime.speed import Race, describe, settle

    bundle = load_bundle(bundle_path)
    asked = threads is not None  # a count the user pinned for timing; later runs honour it, else they adapt
    threads = threads or usable_cores()
    spec = bundle.spec
    arguments = {"n": n, "seed": seed, **({k: v for k, v in spec.bench_arguments(steps, bundle).items() if v is not None}
                                          if spec.can_generate(bundle) else {})}
    if steps is not None and not spec.diffusion:
        raise GenError(f"--steps applies to diffusion bundles; {bundle.family} makes its images in one call", "steps")
    contenders, skipped = available(bundle, backends)
    for s in skipped:
        log(f"  skip {s['contender']}: {s['reason']}")

    with Sampler(bundle_path, backend=RecordingBackend(bundle, threads)) as recorder:
        check_images(recorder, **arguments)  # each component's first real call: what it is timed on below
        feeds = {c: calls[0] for c, calls in recorder.backend.recorded.items()}
    samplers, images = {}, {}
    try:
        quality = _first_calls(samplers, images, contenders, bundle_path, bundle, threads, arguments, min_psnr,
                               skipped, log)
        reference = images[label(DEFAULT)]
        with LoadWatch() as watch:
            per_component, choices = _race_components(bundle, feeds, samplers, threshold, max_seconds, log)
            if len(set(choices.values())) > 1:  # one choice for all is a contender already timed whole
                mixed = Sampler(bundle_path, backend=backend_for(bundle, choices, threads))
                images[MIXED] = check_images(mixed, **arguments)
                quality[MIXED] = round(psnr(reference, images[MIXED]), 2)
                if quality[MIXED] >= min_psnr:
                    samplers[MIXED] = mixed
                else:
                    skipped.append({"contender": MIXED, "reason": f"images {quality[MIXED]} dB PSNR < {min_psnr}"})
                    mixed.close()
            log(f"  timing whole sampling calls ({', '.join(f'{k}={v}' for k, v in arguments.items())}) ...")
            whole = {name: (lambda s=s: check_images(s, **arguments)) for name, s in samplers.items()}
            end_to_end = Race(whole, label(DEFAULT), threshold, max_seconds=max_seconds / 2).run()
            for name, summary in end_to_end.items():
                log(f"    {name}: {describe(summary)}")
            winner, duels = settle(end_to_end, whole, max_seconds=max_seconds / 4)
            for pair, summary in duels.items():
                log(f"    head to head, {pair}: {describe(summary)}")
    finally:
        for s in samplers.values():
            s.close()

    plan_choices, verdict = _decision(bundle, winner, choices, end_to_end, threshold)
    if watch.figures.get("busy"):
        log(f"  warning: {watch.figures['busy']}")
    plan = {"schema": SCHEMA, "host": fingerprint(), "bundle_manifest_sha256": manifest_digest(bundle),
            "threads": threads, "threads_pinned": asked, "components": {c: {"backend": b, "precision": p} for c, (b, p) in plan_choices.items()},
            "verdict": verdict, "winner": winner or label(DEFAULT),
            "settings": {"arguments": arguments, "min_psnr": min_psnr, "threshold": threshold, "max_seconds": max_seconds},
            "quality_psnr_db": quality, "per_component": per_component, "end_to_end": end_to_end,
            "head_to_head": duels,
            "skipped": skipped, "load": watch.figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    plan["path"] = str(write_plan(bundle, plan))
    log(f"  {verdict}")
    return plan


def _first_calls(samplers, images, contenders, bundle_path, bundle, threads, arguments, min_psnr, skipped, log) -> dict:
    """Each contender's first sampling call (compiling, loading) into `samplers` and `images`; those whose images
    fall below `min_psnr` against the default's are out (closed, and added to `skipped`). Returns the PSNRs."""
    from gen.runtime.quality import check_images, psnr
    from gen.runtime.sampler import Sampler

    for choice in contenders:
        sampler = Sampler(bundle_path, backend=backend_for(bundle, dict.fromkeys(bundle.components, choice), threads))
        t0 = time.perf_counter()
        images[label(choice)] = check_images(sampler, **arguments)
        samplers[label(choice)] = sampler
        log(f"  {label(choice)}: first call {time.perf_counter() - t0:.2f} s (compiles, loads)")
    quality = {}
    reference = images[label(DEFAULT)]
    for name in list(samplers):
        quality[name] = round(psnr(reference, images[name]), 2) if name != label(DEFAULT) else None
        if quality[name] is not None and quality[name] < min_psnr:
            log(f"  {name}: out, images {quality[name]} dB PSNR against {label(DEFAULT)} (< --min-psnr {min_psnr})")
            skipped.append({"contender": name, "reason": f"images {quality[name]} dB PSNR < {min_psnr}"})
            samplers.pop(name).close()
    return quality


def _race_components(bundle, feeds, samplers, threshold, max_seconds, log) -> tuple[dict, dict]:
    """Each component's recorded call raced across the samplers: the figures, and each component's choice
    (the default where nothing won, or where the component was not called)."""
    from gen.runtime.speed import Race, best_of, describe

    per_component, choices = {}, {}
    for component, f in feeds.items():
        log(f"  timing {component} on {', '.join(samplers)} ...")
        race = Race({name: (lambda s=s, c=component, f=f: s.backend.outputs(c, f)) for name, s in samplers.items()},
                    label(DEFAULT), threshold, max_seconds=max_seconds / (2 * len(feeds)))
        per_component[component] = race.run()
        best = best_of(per_component[component])
        choices[component] = tuple(best.split("/")) if best else DEFAULT
        for name, summary in per_component[component].items():
            log(f"    {component} {name}: {describe(summary)}")
    for component in bundle.components:  # a component not called (an encoder of a decoder-only run)
        choices.setdefault(component, DEFAULT)
    return per_component, choices


def _decision(bundle, winner, choices, end_to_end, threshold) -> tuple[dict, str]:
    """The plan's (backend, precision) per component and its verdict, from the whole-call race's winner."""
    from gen.runtime.speed import NOT_FASTER, describe

    if winner is None:
        undecided = [n for n, s in end_to_end.items() if s["decision"] != NOT_FASTER]
        return dict.fromkeys(bundle.components, DEFAULT), (
            f"kept {label(DEFAULT)}: " + (f"undecided for {', '.join(undecided)} (too noisy: re-run on idle cores)"
                                          if undecided else f"nothing ran {threshold}x faster"))
    plan_choices = choices if winner == MIXED else dict.fromkeys(bundle.components, tuple(winner.split("/")))
    return plan_choices, f"chose {winner}: {describe(end_to_end[winner])}"
