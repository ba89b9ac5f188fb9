"""Step-level batching (gen.runtime.step_batch): concurrent requests' denoising steps share one network
call per step, and each request's images stay what it gets alone; newcomers join mid-run, a cancelled
or bad request leaves without failing the others."""

import threading
import time

import numpy as np
import pytest

from gen.errors import GenError
from gen.runtime.denoise import DenoiserCall, denoise
from gen.runtime.sampler import Sampler
from gen.runtime.step_batch import StepBatcher


def batched_sampler(bundle) -> Sampler:
    sampler = Sampler(str(bundle), backend="ort", threads=1)
    sampler.source.batch_steps()
    return sampler


def run_all(sampler, requests: list[dict], start=None) -> list:
    """Each request's generate() in its own thread, released together; results or exceptions, in order."""
    results, gate = [None] * len(requests), threading.Barrier(len(requests))

    def go(k):
        gate.wait()
        try:
            results[k] = sampler.generate(**requests[k])
        except Exception as e:  # noqa: BLE001 - returned for the test to look at
            results[k] = e

    threads = [threading.Thread(target=go, args=(k,)) for k in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


MIXED = [{"n": 1, "seed": 1, "steps": 12, "labels": 3},  # default ddim, guided
         {"n": 2, "seed": 2, "steps": 4, "labels": [1, 2], "scheduler": "dpm++"},
         {"n": 1, "seed": 3, "steps": 6, "labels": 7, "guidance": 1.0},  # unguided: half the rows
         {"n": 1, "seed": 4, "steps": 5, "labels": 5, "scheduler": "ddpm"},  # stochastic: its own noise each step
         {"n": 3, "seed": 5, "steps": 8, "labels": [0, 8, 9], "guidance": 3.0, "scheduler": "euler"}]


def test_each_request_gets_its_alone_images_in_a_mixed_batch(bundles):
    alone = Sampler(str(bundles["cddpm"]), backend="ort", threads=1)
    expected = [alone.generate(**r) for r in MIXED]
    with batched_sampler(bundles["cddpm"]) as sampler:
        got = run_all(sampler, MIXED)
        batcher = sampler.backend
    for e, g in zip(expected, got):
        assert np.abs(e - g).max() <= 1e-5
    assert max(batcher.calls_by_rows) > 6  # more rows than any one request's: steps ran together
    assert batcher.ticks < sum(r["steps"] for r in MIXED)


def test_classifier_guidance_runs_its_own_step_among_others(bundles):
    requests = [{"n": 2, "seed": 7, "steps": 6, "labels": [1, 2], "classifier_scale": 3.0}, {"n": 1, "seed": 8, "steps": 9}]
    alone = Sampler(str(bundles["ddpm-guided"]), backend="ort", threads=1)
    expected = [alone.generate(**r) for r in requests]
    with batched_sampler(bundles["ddpm-guided"]) as sampler:
        got = run_all(sampler, requests)
    for e, g in zip(expected, got):
        assert np.abs(e - g).max() <= 1e-5


def test_a_request_arriving_mid_run_joins_and_finishes_first(bundles):
    """A 4-step request sent while a 40-step one is at its step 10 joins at the next step and, being
    short, goes first: it is answered before the long one takes another step."""
    sampler = batched_sampler(bundles["cddpm"])
    short, long_ = {"n": 1, "seed": 11, "steps": 4, "labels": 2}, {"n": 1, "seed": 12, "steps": 40, "labels": 6}
    state = {"long_step": 0}
    result = {}

    def short_step(i, steps, x0):  # in the batcher's thread, as the long one's on_step
        if i + 1 == steps:
            result["long_step_when_short_done"] = state["long_step"]

    def run_short():
        result["short"] = sampler.generate(on_step=short_step, **short)

    def on_step(i, steps, x0):
        state["long_step"] = i + 1
        if i == 9:
            result["thread"] = threading.Thread(target=run_short)
            result["thread"].start()
            deadline = time.monotonic() + 10
            while not sampler.backend.pending and time.monotonic() < deadline:  # until it has arrived
                time.sleep(0.001)

    long_images = sampler.generate(on_step=on_step, **long_)
    result["thread"].join(30)
    assert result["long_step_when_short_done"] == 10  # short first: its 4 steps ran before the long one's 11th
    assert sampler.backend.ticks == 44
    alone = Sampler(str(bundles["cddpm"]), backend="ort", threads=1)
    assert np.abs(result["short"] - alone.generate(**short)).max() <= 1e-5
    assert np.abs(long_images - alone.generate(**long_)).max() <= 1e-5
    sampler.close()


def test_a_cancelled_request_leaves_and_the_others_finish(bundles):
    def cancel_at_3(i, steps, x0):
        if i == 2:
            raise GenError("cancelled by its client")

    requests = [dict(MIXED[0]), {**MIXED[1], "on_step": cancel_at_3}, dict(MIXED[4])]
    alone = Sampler(str(bundles["cddpm"]), backend="ort", threads=1)
    with batched_sampler(bundles["cddpm"]) as sampler:
        got = run_all(sampler, requests)
        again = sampler.generate(**MIXED[3])  # the batcher goes on after it
    assert isinstance(got[1], GenError) and "cancelled" in str(got[1])
    assert np.abs(got[0] - alone.generate(**MIXED[0])).max() <= 1e-5
    assert np.abs(got[2] - alone.generate(**MIXED[4])).max() <= 1e-5
    assert np.abs(again - alone.generate(**MIXED[3])).max() <= 1e-5


def test_a_bad_request_fails_alone_and_never_fails_the_batch(bundles):
    """A state whose feeds the network refuses (a class label past the model's) fails by itself; the
    batched call is retried request by request."""
    from gen.runtime.schedulers import make_scheduler

    sampler = Sampler(str(bundles["cddpm"]), backend="ort", threads=1)
    bundle = sampler.bundle
    batcher = StepBatcher(sampler.backend)
    out, gate = {}, threading.Barrier(3)

    def go(name, labels, seed):
        sched = make_scheduler("ddim", bundle.sampling.scheduler_config)
        sched.set_timesteps(5)
        x = np.random.default_rng(seed).standard_normal((1, 1, bundle.image.height, bundle.image.width), dtype=np.float32)
        call = DenoiserCall("denoiser", np.int64, {"class_labels": np.array(labels, np.int64)})
        gate.wait()
        for backend in (batcher, sampler.backend):  # batched, then alone
            try:
                out.setdefault(name, []).append(denoise(sched, x, np.random.default_rng(seed), backend, call))
            except GenError as e:
                out.setdefault(name, []).append(e)
            sched.set_timesteps(5)

    threads = [threading.Thread(target=go, args=a) for a in (("good", [3], 1), ("bad", [99], 2), ("good2", [4], 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(out["bad"][0], GenError) and "class_labels" in str(out["bad"][0])
    for name in ("good", "good2"):
        assert np.abs(out[name][0] - out[name][1]).max() <= 1e-5


def test_closing_ends_waiting_requests_with_an_error(bundles):
    sampler = Sampler(str(bundles["cddpm"]), backend="ort", threads=1)
    batcher = StepBatcher(sampler.backend)
    batcher.close()
    with pytest.raises(GenError, match="closed"):
        Sampler(str(bundles["cddpm"]), backend=batcher).generate(n=1, steps=3, labels=1)


def test_text_to_image_requests_keep_their_images_in_a_batch(sd_bundle):
    """Two prompts, guided and not, of different step counts and schedulers share the UNet's calls
    (their text embeddings ride along as feeds); each gets its own images within SD's 1e-3."""
    requests = [{"prompt": "a red house", "n": 1, "seed": 1, "steps": 4, "guidance": 7.5, "height": 64, "width": 64},
                {"prompt": ["a cat", "a tree"], "n": 1, "seed": 2, "steps": 3, "guidance": 1.0, "scheduler": "euler",
                 "height": 64, "width": 64}]
    alone = Sampler(str(sd_bundle), backend="ort", threads=1)
    expected = [alone.generate(**r) for r in requests]
    with batched_sampler(sd_bundle) as sampler:
        got = run_all(sampler, requests)
        assert max(sampler.backend.calls_by_rows) == 4  # 2 guided rows + 2 unguided in one UNet call
    for e, g in zip(expected, got):
        assert np.abs(e - g).max() <= 1e-3
