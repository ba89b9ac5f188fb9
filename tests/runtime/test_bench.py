"""`gen bench`: one run, every configuration, fair settings, a table, JSON and a plot."""

import json

import pytest

from gen.errors import GenError
from gen.runtime.bench import plot, run_bench, speedups
from tests.cli.test_cli import gen_here


def test_bench_rows_speedups_and_plot(bundles, tmp_path):
    result = run_bench(str(bundles["ddpm"]), ["eager", "ort"], ["fp32"], [2, 4], [1, 3], warmup=1, repeats=2,
                       threads=2, log=lambda *_: None)
    rows = result["rows"]
    assert [(r["backend"], r["batch"], r["steps"]) for r in rows] == [
        ("eager", 1, 2), ("eager", 1, 4), ("eager", 3, 2), ("eager", 3, 4),
        ("ort", 1, 2), ("ort", 1, 4), ("ort", 3, 2), ("ort", 3, 4)]
    for r in rows:
        assert r["end_to_end"]["runs"] == 2 and 0 < r["end_to_end"]["median_ms"] <= r["end_to_end"]["p95_ms"] * 1.0001
        assert r["components"]["denoiser"]["median_ms"] > 0 and 0 <= r["sampler_overhead_fraction"] < 1
        assert r["peak_rss_mib"] > 10
    assert result["environment"]["threads"] == 2 and result["backends"]["ort/fp32"]["threads"] == 2
    ups = speedups(result)
    assert len(ups) == 4 and all(u["speedup_vs_eager_fp32"] > 0 for u in ups)
    assert plot(result, str(tmp_path / "bench.png")) and (tmp_path / "bench.png").stat().st_size > 1000


def test_cpu_fp16_eager_and_a_precision_not_exported_are_skipped_with_their_reasons(bundles):
    result = run_bench(str(bundles["gan"]), ["eager", "ort"], ["fp16", "int8"], None, [1], repeats=1, log=lambda *_: None)
    assert [(r["backend"], r["precision"], r["steps"]) for r in result["rows"]] == [("ort", "fp16", None)]
    assert "eager fp16 needs device 'cuda'" in result["skipped"][0]["reason"]
    assert result["skipped"][-1] == {"backend": "ort", "precision": "int8",
                                     "reason": "the bundle has no int8 generator (re-export with --int8)"}


def test_int8_is_benched_beside_fp32_and_eager_int8_is_skipped(bundles):
    result = run_bench(str(bundles["cddpm"]), ["eager", "ort"], ["fp32", "int8"], [2], [2], repeats=1, log=lambda *_: None)
    assert [(r["backend"], r["precision"]) for r in result["rows"]] == [("eager", "fp32"), ("ort", "fp32"), ("ort", "int8")]
    assert all(r["peak_rss_mib"] > 0 for r in result["rows"])
    assert "run it with backend 'ort'" in result["skipped"][0]["reason"]


def test_bad_bench_arguments_are_errors_not_skips(bundles, tmp_path):
    with pytest.raises(GenError, match="unknown backend"):
        run_bench(str(bundles["gan"]), ["tensorflow"], ["fp32"], [1], [1])
    with pytest.raises(GenError, match="bundle not found"):
        run_bench(str(tmp_path / "nope"), ["ort"], ["fp32"], [1], [1])


def test_bench_cli_writes_json_and_plot(bundles, tmp_path):
    out = tmp_path / "r.json"
    p = gen_here("bench", bundles["ddpm"], "--backends", "ort", "--steps", "2", "--batch", "1", "--repeats", "1",
                 "--json", out, check=False)  # gen's entry point in process: no new interpreter
    assert p.returncode == 0, p.stderr
    result = json.loads(out.read_text())
    assert result["command"].startswith("gen bench") and len(result["rows"]) == 1
    assert (tmp_path / "r.png").is_file()
    p = gen_here("bench", bundles["ddpm"], "--backends", "ort", "--steps", "2", "--batch", "1,20000", "--json", out, check=False)
    assert p.returncode == 2 and "--batch 20000 is over this bundle's limit of 256 images per call; nothing was run" in p.stderr
    assert "median" not in p.stdout and json.loads(out.read_text())["rows"]  # nothing timed; the earlier results kept
    p = gen_here("bench", bundles["ddpm"], "--steps", "0", check=False)
    assert p.returncode == 2 and "--steps values must be >= 1" in p.stderr
    p = gen_here("bench", bundles["gan"], "--steps", "10", check=False)
    assert p.returncode == 2 and "--steps applies to diffusion bundles; this is a gan bundle" in p.stderr
    p = gen_here("bench", bundles["ddpm"], "--plot", tmp_path / "p.bmp", check=False)
    assert p.returncode == 2 and "the plot is a PNG; give a .png file name" in p.stderr
    p = gen_here("bench", bundles["ddpm"], "--backends", "ort", "--precisions", "fp16", "--steps", "2",
                 "--json", tmp_path / "none.json", check=False)  # the bundle has no fp16 file: all skipped
    assert p.returncode == 2 and "nothing was measured: every configuration was skipped" in p.stderr
    assert "skip ort/fp16" in p.stdout and not (tmp_path / "none.json").exists() and not (tmp_path / "none.png").exists()
