"""The `gen` command as a user runs it: a real subprocess, real exit codes, real messages."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gen.fileio import load_safetensors

GEN = [sys.executable, "-m", "gen"]


def gen(*args, check=True, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    p = subprocess.run([*GEN, *map(str, args)], capture_output=True, text=True, env=env, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"gen {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def gen_here(*args, check=True):
    """`gen ARGS` through the same entry point (gen.cli.main) in this process: the CLI's parsing,
    plumbing and messages without a new interpreter importing torch again (seconds per call).
    Returns a CompletedProcess-like result with returncode, stdout and stderr."""
    import contextlib
    import io
    from unittest import mock

    from gen.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    threads = torch.get_num_threads()  # a command's --threads must not carry over to the next test
    with mock.patch.object(sys, "argv", ["gen", *map(str, args)]), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            torch.set_num_threads(threads)
    p = subprocess.CompletedProcess(["gen", *map(str, args)], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"gen {' '.join(map(str, args))} failed ({code}):\n{p.stdout}\n{p.stderr}")
    return p


def test_help_is_instant_and_imports_no_heavy_library():
    code = "import sys, gen.cli; print(sorted(m for m in ('torch','diffusers','onnxruntime','sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    t0 = time.perf_counter()
    p = gen("--help")
    assert time.perf_counter() - t0 < 3.0  # generous for a loaded CI box; ~0.3 s when idle
    for verb in ("train", "eval", "info"):
        assert verb in p.stdout


def test_info_reports_versions_and_backends():
    report = json.loads(gen("info", "--json").stdout)
    assert report["packages"]["torch"].startswith("2.")
    assert "cpu" in report["torch_devices"]
    assert "CPUExecutionProvider" in report["onnxruntime_providers"]


@pytest.mark.parametrize("args,message", [
    (["train", "transformer"], "No such command 'transformer'"),
    (["train", "gan", "--loss", "wasserstein"], "'wasserstein' is not one of"),
    (["train", "gan", "--data", "/no/such/folder", "--out", "{tmp}/r"], "error: --data folder not found: /no/such/folder"),
    (["train", "vae", "--data", "{tmp}", "--out", "{tmp}-run"], "holds no images"),
    (["train", "vae", "--data", "{tmp}", "--out", "{tmp}/r"], "--out {tmp}/r is, contains or lies inside the input {tmp}"),
    (["eval", "{tmp}/absent"], "error: run directory not found"),
])
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(tmp_path, args, message):
    p = gen(*[a.format(tmp=tmp_path) for a in args], check=False)
    assert p.returncode == 2, p.stderr
    assert message.format(tmp=tmp_path) in p.stderr
    assert "Traceback" not in p.stderr


def test_train_eval_and_refuse_overwrite(tmp_path):
    out = tmp_path / "gan"
    gen_here("train", "gan", "--out", out, "--steps", "30", "--quiet")
    assert {"config.json", "weights.safetensors", "state.safetensors", "metrics.jsonl", "samples.png"} <= {p.name for p in out.iterdir()}
    before = (out / "weights.safetensors").read_bytes()
    p = gen_here("train", "gan", "--out", out, "--steps", "30", "--quiet", check=False)
    assert p.returncode == 2 and "already holds another run" in p.stderr
    assert (out / "weights.safetensors").read_bytes() == before
    result = json.loads(gen_here("eval", out, "--n", "200").stdout)
    assert result["n"] == 200 and result["metrics"]["fd_digits"] > 0
    assert json.loads((out / "eval.json").read_text()) == result


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    # a VAE draws noise every step (reparameterisation) at a fifth of a DDPM's cost; the DDPM's
    # resume is checked in process (tests/trainkit/test_train.py)
    args = ["train", "vae", "--steps", "60", "--batch-size", "16", "--checkpoint-every", "20", "--quiet"]
    gen_here(*args, "--out", tmp_path / "straight")  # only the killed run needs a process of its own
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen([*GEN, *args, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120  # kill it once the first checkpoint (step 20 of 60) is on disk
    while time.time() < deadline and not (killed / "state.safetensors").exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "weights.safetensors").exists()
    p = gen_here(*args, "--out", killed, "--resume", check=False)
    assert p.returncode == 0, p.stderr
    a, _ = load_safetensors(tmp_path / "straight" / "weights.safetensors")
    b, _ = load_safetensors(killed / "weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)



def _train_process(out, *extra):
    """A real `gen train vae` process into `out`, long enough to be stopped."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["train", "vae", "--out", str(out), "--steps", "100000", "--batch-size", "8", "--quiet", *extra]
    return subprocess.Popen([*GEN, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _signal_when(proc, path, sig):
    """Send `sig` once `path` exists; (returncode, stderr)."""
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not path.exists():
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_stopped_or_killed_run_says_what_it_kept_and_a_retry_needs_no_force(tmp_path):
    # the three processes start together: their interpreters' start-up is most of the time
    early, late, killed = tmp_path / "early", tmp_path / "late", tmp_path / "killed"
    # the killed one is signalled last, after the others ran on: no checkpoint of its own before then
    procs = (_train_process(early), _train_process(late, "--checkpoint-every", "20"),
             _train_process(killed, "--checkpoint-every", "1000000"))
    code, err = _signal_when(procs[0], early / "config.json", signal.SIGINT)  # Ctrl-C before the first checkpoint
    assert code == 130, err
    assert "before the first checkpoint (every 500 steps): nothing to resume" in err
    assert f"start again with: gen train vae --out {early} --steps 100000" in err and "--resume" not in err
    assert not early.exists() and not (tmp_path / ".early.lock").exists()  # so the retry needs no --force

    code, err = _signal_when(procs[1], late / "state.safetensors", signal.SIGTERM)  # after one
    assert code == 143, err
    assert "; kept the checkpoint at step " in err and f"({late / 'state.safetensors'})" in err
    assert err.strip().endswith(f"resume with: gen train vae --out {late} --steps 100000 --batch-size 8 --quiet "
                                "--checkpoint-every 20 --resume")
    assert (late / "state.safetensors").is_file() and not (tmp_path / ".late.lock").exists()

    code, _ = _signal_when(procs[2], killed / "config.json", signal.SIGKILL)  # no cleanup can run
    assert code == -signal.SIGKILL and (killed / "config.json").is_file() and not (killed / "state.safetensors").exists()
    p = gen_here("train", "vae", "--out", killed, "--steps", "5", "--resume", check=False)
    assert p.returncode == 2 and "stopped before its first checkpoint, so there is nothing to resume" in p.stderr
    gen_here("train", "vae", "--out", killed, "--steps", "5", "--batch-size", "8", "--quiet")  # no --force needed
    assert (killed / "weights.safetensors").is_file() and json.loads((killed / "config.json").read_text())["steps"] == 5


def _commands(command, path=()):
    """Every command path of the CLI, groups included: ("train", "gan"), ..."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_help_reads_whole_at_80_columns(monkeypatch):
    import typer

    from gen.cli import app

    monkeypatch.setenv("COLUMNS", "80")
    paths = list(_commands(typer.main.get_command(app)))
    assert ("export",) in paths and ("distill", "progressive") in paths and len(paths) > 25
    for path in paths:
        text = gen_here(*path, "--help").stdout
        assert "…" not in text, path  # nothing cut short
        assert max(map(len, text.splitlines())) <= 80, (path, max(text.splitlines(), key=len))
    listing = " ".join(gen_here("distill", "--help").stdout.split())  # summaries whole, wrapped at words
    assert "each halving trains a v-prediction student to take in one DDIM step what its teacher takes in two;" in listing
    export = gen_here("export", "--help").stdout
    assert "(pytorch_lora_weights.safetensors)" in export and "\n  Examples:  gen export runs/ddpm --out bundles/ddpm --fp16\n" in export


def test_adding_a_precision_to_a_bundle_keeps_the_ones_it_has(tmp_path):
    """The README's path: `--fp16` first, then docs/export/int8.md's `--int8` onto the same bundle."""
    from gen.runtime.bundle import load_bundle
    from gen.trainkit.train import train

    opts = {"widths": [16, 32], "batch_size": 16, "steps": 3, "log_every": 3, "sample_every": 100, "checkpoint_every": 100}
    run = train("ddpm", "digits", str(tmp_path / "run"), opts, progress=False).path
    out = tmp_path / "bundle"

    def files():
        return set(load_bundle(out).components["denoiser"].files)

    gen_here("export", run, "--out", out, "--fp16")
    cheap = ["--calibration", "1", "--int8-groups", "conv", "--int8-min-psnr", "0", "--int8-min-speedup", "0"]
    p = gen_here("export", run, "--out", out, "--int8", *cheap)  # the same run: no --force needed
    assert f"adding int8 to the bundle in {out} (fp32, fp16): keeping fp16" in p.stdout
    assert files() == {"fp32", "fp16", "int8"}
    p = gen_here("export", run, "--out", out, "--no-int8", "--force")
    assert "keeping fp16" in p.stdout and "dropping int8 as asked" in p.stdout and files() == {"fp32", "fp16"}

    import shutil

    other = shutil.copytree(run, tmp_path / "other")
    p = gen_here("export", other, "--out", out, check=False)  # another run's bundle: still --force
    assert p.returncode == 2 and "already exists; pass --force" in p.stderr and files() == {"fp32", "fp16"}
