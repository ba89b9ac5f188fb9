"""The README's path, as a user types it: train, export, generate, serve build, serve start, remote
generate, stop — every command through the `gen` CLI, none failing (few steps: the plumbing is the
point here; quality has its own checks). The server runs as its own `gen serve start` process; the
other commands run gen's entry point in this process (the same parsing and messages, without a new
interpreter importing torch for each)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gen.errors import GenError
from gen.serving.server import find_tritonserver
from tests.cli.test_cli import gen_here

try:
    find_tritonserver()
    HAVE_TRITON = True
except GenError:
    HAVE_TRITON = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gen(*args, cwd):
    assert Path.cwd() == cwd  # relative paths, as the README types them
    return gen_here(*args).stdout


@pytest.mark.skipif(not HAVE_TRITON, reason="no tritonserver: pip install --no-deps nvidia-pytriton==0.7.0")
def test_the_readme_path_reaches_a_served_image(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gen("train", "ddpm", "--data", "digits", "--out", "runs/ddpm", "--steps", "40", "--quiet", cwd=tmp_path)
    gen("export", "runs/ddpm", "--out", "bundles/ddpm", "--fp16", cwd=tmp_path)
    out = gen("generate", "bundles/ddpm", "--backend", "ort", "--n", "16", "--steps", "5", "--out", "grid.png", cwd=tmp_path)
    assert "16 images" in out and (tmp_path / "grid.png").stat().st_size > 0
    gen("serve", "build", "bundles/ddpm", "--out", "model_repository", cwd=tmp_path)
    http = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gen", "serve", "start", "model_repository", "--http-port", str(http),
                               "--grpc-port", str(free_port())], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline, lines = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if "ddpm " in line and "READY" in line:
                break
            assert line or server.poll() is None, "".join(lines)
        out = gen("generate", "--url", f"http://127.0.0.1:{http}", "--model", "ddpm", "--n", "16", "--steps", "5",
                  "--out", "grid.png", cwd=tmp_path)
        assert "16 images" in out and "replaced the earlier grid.png" in out
        assert '"healthy": true' in gen("serve", "status", f"http://127.0.0.1:{http}", cwd=tmp_path)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
    assert server.returncode == 0 and "stopping tritonserver" in server.stdout.read()
