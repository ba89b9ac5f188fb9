"""A model family from outside gen: tests/fixtures/toy_family is a separate package (three modules and
their entry points, nothing else), pip-installed into a folder of its own; with it on the path, every
gen command works on the new family, and no file of gen/ names it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.demo.test_demo import free_port

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "toy_family"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The toy package pip-installed (a real build and install, entry points and all) into its own folder."""
    site, source = tmp_path_factory.mktemp("toy-site"), tmp_path_factory.mktemp("toy-source") / "toy_family"
    shutil.copytree(FIXTURE, source, ignore=shutil.ignore_patterns("__pycache__"))  # setuptools builds in the tree
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), str(source)], check=True, capture_output=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "OMP_NUM_THREADS": "1"}


def gen(env, cwd, *args) -> str:
    p = subprocess.run([sys.executable, "-m", "gen", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def test_an_installed_family_trains_exports_samples_serves_and_demos(installed, tmp_path):
    assert "toy " in gen(installed, tmp_path, "train", "--help")  # listed beside gen's own families
    assert "--z-dim" in gen(installed, tmp_path, "train", "toy", "--help")  # options from its typed config
    gen(installed, tmp_path, "train", "toy", "--out", "runs/toy", "--steps", "150", "--quiet", "--threads", "1")
    config = json.loads((tmp_path / "runs/toy/config.json").read_text())
    assert config["family"] == "toy" and config["z_dim"] == 8 and config["steps"] == 150
    loss = [json.loads(line)["loss"] for line in (tmp_path / "runs/toy/metrics.jsonl").read_text().splitlines()]
    assert loss[-1] < 0.5 * loss[0]  # it trained: the moments it matches came closer
    out = gen(installed, tmp_path, "export", "runs/toy", "--out", "bundles/toy")
    assert "ORT fp32 vs eager" in out
    gen(installed, tmp_path, "generate", "bundles/toy", "--backend", "ort", "--n", "16", "--out", "grid.png")
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.std() > 5  # images, not a blank page
    gen(installed, tmp_path, "serve", "build", "bundles/toy", "--out", "repo")
    assert (tmp_path / "repo" / "toy" / "config.pbtxt").is_file()
    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "gen", "demo", "bundles/toy", "--port", str(port)], cwd=tmp_path,
                            env=installed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                listing = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=2).read())
                break
            except OSError:
                assert demo.poll() is None and time.time() < deadline, demo.stdout.read() if demo.poll() is not None else "no answer"
                time.sleep(0.2)
        assert [m["family"] for m in listing["models"]] == ["toy"]
    finally:
        demo.terminate()
        demo.wait(timeout=30)


def test_no_file_of_gen_names_the_plugin_family():
    named = [str(p.relative_to(ROOT)) for p in (ROOT / "gen").rglob("*.py") if "gen_toy" in p.read_text()
             or '"toy"' in p.read_text()]
    assert named == []


def test_the_fixture_is_three_modules_and_its_package_file():
    assert sorted(p.name for p in FIXTURE.iterdir() if p.name != "__pycache__") == [
        "gen_toy_nets.py", "gen_toy_runtime.py", "gen_toy_training.py", "pyproject.toml"]


def test_a_family_defined_twice_is_refused(installed, tmp_path):
    """A plug-in never silently replaces a family: one claiming gen's own name is refused, naming both."""
    pkg = tmp_path / "dup"
    pkg.mkdir()
    (pkg / "gen_dup_training.py").write_text("from dataclasses import dataclass\nfrom gen.trainkit.config import TrainConfig\n\n\n"
                                             "@dataclass\nclass Dup(TrainConfig):\n    name = 'gan'\n\n\nCONFIG = Dup\n")
    (pkg / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
                                        '[project]\nname = "gen-dup"\nversion = "0"\n'
                                        '[project.entry-points."gen.families.training"]\ngan = "gen_dup_training"\n'
                                        '[tool.setuptools]\npy-modules = ["gen_dup_training"]\n')
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), str(pkg)], check=True, capture_output=True)
    p = subprocess.run([sys.executable, "-m", "gen", "train", "--help"], cwd=tmp_path, capture_output=True, text=True,
                       env={**installed, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])})
    assert p.returncode != 0
    assert "model family 'gan' is defined twice" in p.stdout + p.stderr and "gen_dup_training" in p.stdout + p.stderr
