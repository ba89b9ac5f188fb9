"""Text options (prompts, DreamBooth's prompts, textual inversion's token) are valid UTF-8 and of a
bounded length, checked by one function for the CLI and the library; an SD run that fails before it is
complete removes what it wrote."""

import pytest

from gen.errors import GenError
from gen.runtime.prompts import check_prompts, check_text
from tests.cli.test_cli import gen_here

NOT_UTF8 = "a \udcff house"  # what Python makes of the command line bytes  a \xff house


@pytest.mark.parametrize("args,flag", [
    (["generate", "{tmp}/b", "--prompt", NOT_UTF8], "--prompt"),
    (["generate", "{tmp}/b", "--prompt", "x", "--negative-prompt", NOT_UTF8], "--negative-prompt"),
    (["train", "dreambooth", "--instance-prompt", NOT_UTF8, "--out", "{tmp}/run"], "--instance-prompt"),
    (["train", "dreambooth", "--class-prompt", NOT_UTF8, "--out", "{tmp}/run"], "--class-prompt"),
    (["train", "textual-inversion", "--token", NOT_UTF8, "--out", "{tmp}/run"], "--token"),
])
def test_text_that_is_not_utf8_is_named_before_work(tmp_path, args, flag):
    p = gen_here(*[a.format(tmp=tmp_path) for a in args], check=False)
    assert p.returncode == 2, p.stderr
    assert f"error: {flag} is not valid UTF-8 text: character 3 is the byte 0xff; retype it as UTF-8" in p.stderr
    assert not list(tmp_path.iterdir())  # no run directory to clean up or --force over


def test_a_token_is_held_to_the_prompt_length(tmp_path):
    p = gen_here("train", "textual-inversion", "--token", "a" * 5000, "--out", tmp_path / "run", check=False)
    assert p.returncode == 2 and "--token is 5000 characters long; at most 2000 are taken" in p.stderr
    assert not list(tmp_path.iterdir())


def test_the_library_takes_the_same_check():
    with pytest.raises(GenError, match="prompt is not valid UTF-8 text: character 3 is the byte 0xff") as e:
        check_prompts(["ok", NOT_UTF8])
    assert e.value.argument == "prompt"
    with pytest.raises(GenError, match="a lone surrogate U\\+D800"):
        check_text("\ud800", "negative_prompt")
    assert check_prompts("a red house") == ["a red house"]


def test_a_new_sd_run_that_fails_removes_what_it_wrote(tmp_path):
    from gen.trainkit.rundir import RunDir
    from gen.trainkit.sd.base import run_output

    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="failed half-way"):
        with run_output(str(out), "train dreambooth"):
            RunDir(out).path.mkdir()
            RunDir(out).write_config({"family": "dreambooth"})
            (out / "samples_before.png").write_bytes(b"png")
            raise RuntimeError("failed half-way")  # as a tokenizer's TypeError did after the config was written
    assert not out.exists() and not list(tmp_path.iterdir())  # no lock, no config: the retry needs no --force
    out.mkdir()  # a folder that was there before keeps the user's files and stays
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with run_output(str(out), "train dreambooth"):
            RunDir(out).write_config({"family": "dreambooth"})
            raise RuntimeError("failed")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
