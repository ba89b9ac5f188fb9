"""A deployment host: a venv with gen's runtime extra and no torch generates from a bundle."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("runtime-venv")
    # the venv gets no pip of its own and its packages no bytecode up front: this process's pip installs
    # into it (--python), 10 s less of the suite than a full venv and pip install
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-compile",
           "-c", str(REPO / "constraints.txt")]
    p = subprocess.run([*pip, f"{REPO}[runtime]"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    return venv


def test_generate_with_ort_in_a_venv_without_torch(runtime_venv, bundles, tmp_path):
    py = str(runtime_venv / "bin" / "python")
    assert subprocess.run([py, "-c", "import torch"], capture_output=True).returncode != 0
    out = tmp_path / "grid.png"
    p = subprocess.run([str(runtime_venv / "bin" / "gen"), "generate", str(bundles["cddpm"]), "--backend", "ort",
                        "--n", "4", "--steps", "5", "--label", "3", "--guidance", "2", "--out", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size > 0 and "CPUExecutionProvider" in p.stdout
    # the same images as the full install's ORT path
    code = ("import numpy as np; from gen.runtime.sampler import Sampler; "
            f"np.save({str(tmp_path / 'a.npy')!r}, Sampler({str(bundles['cddpm'])!r}).generate(n=4, seed=0, steps=5))")
    subprocess.run([py, "-c", code], check=True)
    import numpy as np

    from gen.runtime.sampler import Sampler

    ref = Sampler(str(bundles["cddpm"])).generate(n=4, seed=0, steps=5)
    assert np.abs(np.load(tmp_path / "a.npy") - ref).max() <= 1e-5


def test_eager_backend_without_torch_says_what_to_install(runtime_venv, bundles):
    p = subprocess.run([str(runtime_venv / "bin" / "gen"), "generate", str(bundles["gan"]), "--backend", "eager"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "backend 'eager' needs PyTorch" in p.stderr


def test_text_to_image_in_a_venv_without_torch_or_transformers(runtime_venv, sd_bundle, tmp_path):
    """The deployment host tokenizes with `tokenizers` alone and gets the full install's images."""
    import numpy as np

    from gen.runtime.sampler import Sampler

    py = str(runtime_venv / "bin" / "python")
    assert subprocess.run([py, "-c", "import transformers"], capture_output=True).returncode != 0
    kw = "steps=4, seed=3, negative_prompt='blurry', height=64, width=80"
    code = ("import numpy as np; from gen.runtime.sampler import Sampler; "
            f"np.save({str(tmp_path / 'sd.npy')!r}, Sampler({str(sd_bundle)!r}).generate(['a red house', 'a cat'], {kw}))")
    p = subprocess.run([py, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    ref = Sampler(str(sd_bundle)).generate(["a red house", "a cat"], steps=4, seed=3, negative_prompt="blurry",
                                           height=64, width=80)
    assert np.abs(np.load(tmp_path / "sd.npy") - ref).max() <= 1e-5
