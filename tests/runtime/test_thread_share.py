"""Sampling threads give way to another job on the same cores and come back when it ends; a count
asked for never moves; a component too big for a second session keeps its first count."""

import os
import subprocess
import sys

import numpy as np
import pytest

from gen.runtime.host import usable_cores

SCRIPT = """
import subprocess, sys, time
import numpy as np
import gen.runtime.threads as threads
threads.CHECK_SECONDS = 1.0  # windows of a second: twice /proc/stat's shortest trusted one
from gen.runtime import Sampler
s = Sampler(sys.argv[1], backend=sys.argv[2])
alone = s.generate(n=4, steps=4, seed=3)
burn = subprocess.Popen([sys.executable, "-c", "import time\\nt = time.time()\\nwhile time.time() - t < 1.6: pass"])
time.sleep(0.2)
def loop(seconds):
    t = time.time()
    while time.time() - t < seconds:
        out = s.generate(n=4, steps=4, seed=3)
    return out
start = s.backend.threads
shared = loop(1.3)
busy = s.backend.threads
burn.wait()
loop(1.3)
print(start, busy, s.backend.threads, float(np.abs(shared - alone).max()))
print("\\n".join(s.backend.thread_changes))
"""


@pytest.mark.skipif(usable_cores() != 2, reason="the figures below are for a 2-core host, like CI's")
@pytest.mark.parametrize("backend", ["ort", "openvino"])
def test_a_neighbour_burning_a_core_halves_the_sampling_threads_until_it_ends(bundles, backend):
    import time

    from gen.runtime.host import LoadWatch

    if backend == "openvino":
        pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install 'gen[openvino]')")
    with LoadWatch() as quiet:
        time.sleep(0.6)
    if quiet.figures["busy"]:  # another job already holds the cores: "back to 2" could not happen
        pytest.skip(f"the host is busy before the test starts ({quiet.figures['busy']})")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # unpinned, as `gen generate` runs by default
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(bundles["ddpm"]), backend], env=env, capture_output=True,
                       text=True, check=True, timeout=120)
    counts, *lines = p.stdout.splitlines()
    start, busy, after, diff = counts.split()
    assert (start, busy, after) == ("2", "1", "2"), p.stdout
    assert float(diff) < 1e-4  # the images do not depend on the thread count beyond float rounding
    assert lines[0].startswith("other jobs use about") and lines[0].endswith("sampling on 1 thread (was 2)")
    assert lines[1].startswith("now free: about") and lines[1].endswith("sampling on 2 threads (was 1)")


def test_a_count_asked_for_never_changes(bundles, monkeypatch):
    from gen.runtime.backends import create_backend

    monkeypatch.delenv("OMP_NUM_THREADS")
    with create_backend("ort", load(bundles["ddpm"]), threads=2) as b:
        b.share._since -= 10
        assert b.threads_for("denoiser") == 2 and b.share.pinned
        assert b.describe()["threads_rule"] == "2 threads (pinned: --threads or OMP_NUM_THREADS)"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the environment pins it too, as it does training
    with create_backend("ort", load(bundles["ddpm"])) as b:
        assert b.threads == 1 and b.share.pinned


def test_each_thread_count_gets_its_own_session_up_to_the_size_limit(bundles, monkeypatch):
    import gen.runtime.backends as backends
    from gen.runtime.backends import create_backend

    monkeypatch.delenv("OMP_NUM_THREADS")
    bundle = load(bundles["ddpm"])
    feeds = bundle.spec.example_feeds(bundle, "denoiser", 2)
    with create_backend("ort", bundle) as b:
        assert not b.share.pinned and b.threads == usable_cores()
        first = b.run("denoiser", feeds)
        b.share.threads = 1  # what a busy host's check would set
        again = b.run("denoiser", feeds)
        assert sorted(t for (_, t) in b._sessions) == sorted({1, usable_cores()})
        np.testing.assert_allclose(again, first, atol=1e-5)
    monkeypatch.setattr(backends, "ADAPT_MAX_BYTES", 0)  # every component is "too big" for a second session
    with create_backend("ort", bundle) as b:
        b.run("denoiser", feeds)
        b.share.threads = 1
        b.run("denoiser", feeds)
        assert [t for (_, t) in b._sessions] == [usable_cores()]


def load(path):
    from gen.runtime.bundle import load_bundle

    return load_bundle(path)


def test_counts_snap_to_powers_of_two_so_a_big_host_opens_few_sessions():
    from gen.runtime.threads import snapped

    assert [snapped(w, 2) for w in (1, 2)] == [1, 2]
    assert [snapped(w, 12) for w in (1, 2, 3, 5, 7, 8, 11, 12)] == [1, 2, 2, 4, 4, 8, 8, 12]


def test_bf16_precisions_find_their_files_when_threads_adapt(bundles, monkeypatch):
    """bf16 and int8-bf16 compute the fp32 / int8 files: the size check behind adapting must map the name."""
    from gen.runtime.backends import create_backend

    monkeypatch.delenv("OMP_NUM_THREADS")
    bundle = load(bundles["cddpm"])
    with create_backend("ort", bundle) as b:
        for precision in ("bf16", "int8-bf16"):
            b.precision = precision  # what an openvino backend of that precision asks (refused here without bf16)
            assert b.component_bytes("denoiser") == b.bundle.onnx_path("denoiser", precision).stat().st_size


def test_a_tuned_plan_adapts_unless_its_count_was_pinned(bundles, tmp_path, monkeypatch):
    import shutil

    from gen.runtime.host import fingerprint
    from gen.runtime.plan import SCHEMA, manifest_digest, planned_backend, write_plan

    monkeypatch.delenv("OMP_NUM_THREADS")
    path = tmp_path / "b"
    shutil.copytree(bundles["ddpm"], path)
    bundle = load(path)

    for pinned, expect_pinned in ((False, False), (True, True)):
        write_plan(bundle, {"schema": SCHEMA, "host": fingerprint(), "bundle_manifest_sha256": manifest_digest(bundle),
                            "threads": 1, "threads_pinned": pinned, "components": {"denoiser": {"backend": "ort", "precision": "fp32"}},
                            "verdict": "t", "winner": "ort/fp32", "settings": {}})
        backend, _ = planned_backend(load(path), None)
        with backend:
            assert backend.share.pinned is expect_pinned and backend.threads == (1 if pinned else usable_cores())
