"""Every file a command writes (--json, --plot, generate's --out) follows the output rules: never inside
or over an input, never over a file gen did not write unless --force, atomic, and a clear error for a
folder, an unwritable place or a full disk. Each refusal comes before any work (the inputs here are not
even real runs: nothing is loaded)."""

import json
import os

import numpy as np
import pytest

from gen.errors import GenError
from gen.images import save_grid, written_by_gen
from gen.outputs import check_output_file, gen_json, write_output
from tests.cli.test_cli import gen_here


@pytest.fixture
def run(tmp_path):
    """A folder that stands for a run and a bundle: what matters is that its files survive."""
    r = tmp_path / "run"
    r.mkdir()
    for name, data in (("weights.safetensors", b"weights"), ("config.json", b'{"family": "ddpm"}'),
                       ("gen.json", b'{"format": 1}'), ("samples.png", b"png")):
        (r / name).write_bytes(data)
    return r


@pytest.mark.parametrize("args,message", [
    (["eval", "{run}", "--json", "{run}/weights.safetensors"], "--json {run}/weights.safetensors is, contains or lies inside the input {run}"),
    (["eval", "{run}", "--json", "{run}/config.json"], "lies inside the input {run}"),
    (["eval", "{run}", "--json", "{run}/fresh.json"], "lies inside the input {run}"),
    (["bench", "{run}", "--json", "{run}/gen.json"], "--json {run}/gen.json is, contains or lies inside the input {run}"),
    (["bench", "{run}", "--json", "{run}/samples.json"], "lies inside the input {run}"),  # the plot beside it too
    (["bench", "{run}", "--plot", "{run}/samples.png"], "--plot {run}/samples.png is, contains or lies inside the input"),
    (["generate", "{run}", "--out", "{run}/samples.png"], "--out {run}/samples.png is, contains or lies inside the input"),
    (["eval", "{run}", "--json", "{tmp}/notes.txt"], "--json {tmp}/notes.txt exists and is not a file gen wrote of this kind; pass --force"),
    (["bench", "{run}", "--json", "{tmp}/r.json", "--plot", "{tmp}/photo.png"], "--plot {tmp}/photo.png exists and is not a file gen wrote"),
    (["bench", "{run}", "--json", "{tmp}/photo.json"], "--plot (beside --json: {tmp}/photo.png) {tmp}/photo.png exists and is not a file gen wrote"),
    (["generate", "{run}", "--out", "{tmp}/photo.png"], "--out {tmp}/photo.png exists and is not a file gen wrote of this kind; pass --force"),
    (["eval", "{run}", "--json", "{tmp}/dir"], "--json {tmp}/dir is a folder; give a file name inside it"),
    (["eval", "{run}", "--json", "{tmp}/notes.txt/x.json"], "notes.txt is not a folder"),
])
def test_outputs_are_checked_before_work_and_nothing_is_lost(run, tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG not gen's")
    (tmp_path / "dir").mkdir()
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    p = gen_here(*[a.format(run=run, tmp=tmp_path) for a in args], check=False)
    assert p.returncode == 2 and message.format(run=run, tmp=tmp_path) in p.stderr, p.stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # every file intact, none added


def test_gen_results_are_replaced_and_others_only_with_force(tmp_path):
    result, picture, other = tmp_path / "r.json", tmp_path / "g.png", tmp_path / "x.json"
    write_output(result, json.dumps({"command": "gen eval runs/a"}).encode(), "--json")
    save_grid(picture, np.zeros((1, 3, 8, 8), np.float32))
    other.write_text('{"mine": 1}')
    assert gen_json(result) and written_by_gen(picture) and not gen_json(other)
    for path, ours in ((result, gen_json), (picture, written_by_gen)):
        check_output_file(path, "--json", ours, force=False)  # gen's own: replaceable as results are
    with pytest.raises(GenError, match="--json .*x.json exists and is not a file gen wrote of this kind; pass --force"):
        check_output_file(other, "--json", gen_json, force=False)
    check_output_file(other, "--json", gen_json, force=True)
    for suffix in (".jpg", ".webp", ".gif"):  # every format gen saves carries its mark
        save_grid(tmp_path / f"g{suffix}", np.zeros((2, 3, 8, 8), np.float32))
        assert written_by_gen(tmp_path / f"g{suffix}")


def test_a_failed_write_is_a_clear_error_and_leaves_what_stood_there(tmp_path):
    target = tmp_path / "r.json"  # a folder where the file goes: the rename into place fails (as a full disk's write)
    target.mkdir()
    (target / "keep").write_text("kept")
    with pytest.raises(GenError, match=r"--json .*r.json: cannot write \(Is a directory\); nothing was replaced"):
        write_output(target, b"new", "--json")
    assert (target / "keep").read_text() == "kept" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_an_unwritable_place_is_named(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere; the check is on the permission bits
        pytest.skip("root ignores permissions")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(GenError, match="not writable"):
        check_output_file(ro / "r.json", "--json", gen_json, force=False)


def test_export_force_over_a_damaged_manifest_says_exactly_what_to_do(tmp_path):
    from gen.export.onnx_io import refuse_existing

    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "gen.json").write_text('{"command": "gen eval x"}')  # what `--json b/gen.json` used to leave
    (bundle / "generator.onnx").write_bytes(b"onnx")
    with pytest.raises(GenError, match=rf"which was damaged, .* remove it yourself \(rm -r {bundle}\) and run this export again"):
        refuse_existing(bundle, force=True)
    assert (bundle / "generator.onnx").read_bytes() == b"onnx"
