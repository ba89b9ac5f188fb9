"""Training threads give way to another job on the same cores, and come back when it ends."""

import os
import subprocess
import sys

import pytest

from gen.runtime.host import usable_cores

SCRIPT = """
import subprocess, sys, time
import torch  # imported before the neighbour starts: its import alone takes seconds
import gen.runtime.threads as threads
threads.CHECK_SECONDS = 1.0  # windows of a second: twice /proc/stat's shortest trusted one
from gen.trainkit.threads import ThreadGovernor
burn = subprocess.Popen([sys.executable, "-c", "import time\\nt = time.time()\\nwhile time.time() - t < 1.6: pass"])
time.sleep(0.2)
lines = []
g = ThreadGovernor(None, log=lines.append)
start = g.share.threads
t = time.time()
while time.time() - t < 1.25:
    g.tick(); time.sleep(0.01)
busy = g.share.threads
burn.wait()
t = time.time()
while time.time() - t < 1.25:
    g.tick(); time.sleep(0.01)
print(start, busy, g.share.threads)
print("\\n".join(lines))
"""


@pytest.mark.skipif(usable_cores() != 2, reason="the figures below are for a 2-core host, like CI's")
def test_a_neighbour_burning_a_core_halves_the_threads_until_it_ends():
    import time

    from gen.runtime.host import LoadWatch

    with LoadWatch() as quiet:
        time.sleep(0.6)
    if quiet.figures["busy"]:  # another job already holds the cores: "back to 2" could not happen
        pytest.skip(f"the host is busy before the test starts ({quiet.figures['busy']})")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # unpinned, as `gen train` runs by default
    p = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True, timeout=60)
    counts, *lines = p.stdout.splitlines()
    assert counts == "2 1 2", p.stdout
    assert lines[0].startswith("other jobs use about") and lines[0].endswith("training on 1 thread (was 2)")
    assert lines[1].startswith("now free: about") and lines[1].endswith("training on 2 threads (was 1)")


def test_a_pinned_count_never_changes():
    from gen.trainkit.threads import ThreadGovernor

    g = ThreadGovernor(1, log=lambda *_: pytest.fail("a pinned count must not change"))
    assert g.share.pinned and g.describe() == "1 thread (pinned: --threads or OMP_NUM_THREADS)"
    g.share._since -= 10
    g.tick()
    assert g.share.threads == 1
