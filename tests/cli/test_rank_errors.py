"""Under torchrun every process runs the command; a configuration error is printed once, by rank 0,
and every process exits 2."""

import pytest

from tests.cli.test_cli import gen_here


@pytest.mark.parametrize("rank,printed", [("0", True), ("1", False), ("3", False)])
def test_a_config_error_is_printed_by_rank_0_alone(monkeypatch, tmp_path, rank, printed):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", rank)
    p = gen_here("train", "gan", "--batch-size", "0", "--out", tmp_path / "run", check=False)
    assert p.returncode == 2 and ("--batch-size must be from 1 to 4096, got 0" in p.stderr) == printed, p.stderr
    assert p.stderr.count("error:") == printed and not list(tmp_path.iterdir())
