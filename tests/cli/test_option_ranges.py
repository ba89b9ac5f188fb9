"""Every numeric option of every command has a range, stated in --help and checked before any work."""

import typer
import pytest

from gen.cli import app
from gen.cli.ranges import numeric
from tests.cli.test_cli import gen_here


def numeric_options():
    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            for p in command.params:
                if numeric(p.type_descriptor.annotation):
                    yield " ".join(path), p

    return list(walk(typer.main.get_command(app), []))


def test_every_numeric_option_states_and_checks_a_range_its_default_lies_in():
    options = numeric_options()
    assert len(options) > 150  # every command's, sub-commands included
    for command, p in options:
        assert p.callback is not None and p.help.endswith("]") and " to " in p.help.rsplit("[", 1)[1], (command, p.name)
        lo, hi = (float(v) for v in p.help.rsplit("[", 1)[1].rstrip("]").split(" to "))
        assert p.default is None or lo <= p.default <= hi, (command, p.name, p.default)


@pytest.mark.parametrize("args,message", [
    (["train", "textual-inversion", "--resolution", "100000"], "--resolution must be from 8 to 2048, got 100000"),
    (["train", "dreambooth", "--resolution", "100000"], "--resolution must be from 8 to 2048, got 100000"),
    (["train", "dreambooth", "--num-class-images", "10000000"], "--num-class-images must be from 1 to 10000, got 10000000"),
    (["train", "textual-inversion", "--num-vectors", "1000"], "--num-vectors must be from 1 to 64, got 1000"),
    (["train", "sd-lora", "--rank", "100000"], "--rank must be from 1 to 1024, got 100000"),
    (["export", "--model", "tiny-sd", "--int8", "--calibration", "1000000"], "--calibration must be from 1 to 10000"),
    (["bench", "x", "--repeats", "100000000"], "--repeats must be from 1 to 10000, got 100000000"),
    (["serve", "build", "x", "--max-batch", "100000000"], "--max-batch must be from 1 to 4096"),
    (["serve", "start", "x", "--timeout", "nan"], "--timeout must be from 0.1 to 86400, got nan"),
    (["serve", "start", "x", "--watch", "-1"], "--watch must be from 0 to 86400, got -1.0"),
    (["serve", "start", "x", "--watch", "nan"], "--watch must be from 0 to 86400, got nan"),
])
def test_an_option_out_of_range_is_refused_before_work(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    p = gen_here(*args, check=False)
    assert p.returncode == 2 and message in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert not list(tmp_path.iterdir())  # nothing written, nothing started


def test_help_shows_the_range():
    p = gen_here("train", "textual-inversion", "--help", check=False)
    assert p.returncode == 0 and "[8 to 2048]" in p.stdout
