"""Backends: a lifecycle, dict outputs, settings that are never silently ignored."""

import numpy as np
import pytest

from gen.errors import GenError
from gen.runtime.backends import backend_names, create_backend
from gen.runtime.bundle import load_bundle
from gen.runtime.sampler import Sampler


def test_registry_lists_the_backends():
    assert backend_names()[:2] == ("eager", "ort")


@pytest.mark.parametrize("backend", ["eager", "ort"])
def test_outputs_by_name_and_close(bundles, backend):
    bundle = load_bundle(bundles["gan"])
    with create_backend(backend, bundle) as b:
        feeds = {"z": np.zeros((2, bundle.sampling.z_dim), np.float32)}
        out = b.outputs("generator", feeds)
        assert list(out) == ["images"] and out["images"].shape == (2, 1, 8, 8)
        assert np.array_equal(b.run("generator", feeds), out["images"])
    with pytest.raises(GenError, match="is closed"):
        b.run("generator", feeds)


def test_sampler_is_a_context_manager(bundles):
    with Sampler(str(bundles["vae"])) as s:
        assert s.generate(n=2).shape == (2, 1, 8, 8)
    assert s.backend.closed


def test_settings_a_backend_cannot_honour_are_refused(bundles):
    with pytest.raises(GenError, match="eager fp16 needs device 'cuda'"):
        Sampler(str(bundles["gan"]), backend="eager", precision="fp16")
    with pytest.raises(GenError, match="unknown precision 'int4'"):
        Sampler(str(bundles["gan"]), precision="int4")
    with pytest.raises(GenError, match="threads must be at least 1"):
        Sampler(str(bundles["gan"]), threads=0)
    with pytest.raises(GenError, match="runs on the server, which fixes precision"):
        Sampler("http://127.0.0.1:9", backend="triton", model="x", precision="fp16")
