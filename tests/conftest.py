"""Test-wide settings: offline, pinned threads, a private cache, and small shared fixtures."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """`slow` tests (a server of their own to stop, long waits) run with `-m slow` or GEN_SLOW=1; the default
    suite must stay under 8 minutes on 2 cores."""
    if "slow" in (config.getoption("-m") or "") or os.environ.get("GEN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow (or GEN_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _pinned(tmp_path_factory):
    os.environ["GEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("gen-cache"))
    try:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # 2 unless the caller set OMP_NUM_THREADS
    except ImportError:
        pass
    yield


@pytest.fixture(autouse=True, scope="session")
def _short_int8_timing():
    """INT8 export times each candidate against fp32 in alternating blocks of about 0.25 s a side, at
    least 5 and more while the interval straddles the rule (up to 20 s), so that its decision holds.
    The tests check what the export does with the decisions (gates, exclusions, refusals, records),
    not how exact the figures are: 5 blocks of about 0.01 s, which saves about 30 s of the suite.
    `gen export --int8` and benchmarks/int8_digits.sh run the real settings."""
    import gen.export.int8 as int8

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(int8, "ROUND_SECONDS", 0.01)
        patch.setattr(int8, "MEASURE_SECONDS", 0.0)
        yield


@pytest.fixture(scope="session")
def digits():
    from gen.trainkit.data import load_dataset

    return load_dataset("digits")


from tests.bundles_fixture import bundles, sd_bundle, sd_slots_bundle  # noqa: E402,F401  (tiny exported bundles, shared by runtime and serving tests)


@pytest.fixture
def quick_metric_classifier(monkeypatch, tmp_path):
    """gen eval's metric classifier fitted for 3 epochs instead of 30, in a private cache (so no other
    test reads it): for the translation families' eval tests, where the full fit costs 20-30 s on 2
    cores and what they assert holds either way (3 epochs reach 0.88 held-out accuracy on CycleGAN's
    20 domain x digit classes). Every other `gen eval` in the suite fits it fully."""
    import functools

    import gen.trainkit.eval.classifier as classifier

    monkeypatch.setenv("GEN_CACHE_DIR", str(tmp_path / "quick-metric-cache"))
    monkeypatch.setattr(classifier, "train_classifier", functools.partial(classifier.train_classifier, epochs=3))
