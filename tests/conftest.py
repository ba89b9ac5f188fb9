"""Test-wide settings: offline, pinned threads, a private cache, and small shared fixtures."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _pinned(tmp_path_factory):
    os.environ["GEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("gen-cache"))
    try:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # 2 unless the caller set OMP_NUM_THREADS
    except ImportError:
        pass
    yield


@pytest.fixture(scope="session")
def digits():
    from gen.trainkit.data import load_dataset

    return load_dataset("digits")


from tests.bundles_fixture import bundles, sd_bundle  # noqa: E402,F401  (tiny exported bundles, shared by runtime and serving tests)
