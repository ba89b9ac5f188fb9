"""Limits and guarantees in process: bounded calls, checked numbers, verified files, writes that
cannot destroy or mix (the served side is in tests/serving/test_server.py)."""

import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gen.errors import GenError
from gen.export.onnx_export import export_run
from gen.runtime.sampler import Sampler
from gen.serving.repository import build_repository
from gen.trainkit.train import train
from tests.cli.test_cli import gen_here

FAST = {"log_every": 10, "sample_every": 1000, "checkpoint_every": 1000}
QUIET = {"progress": lambda *_: None}


# -- bounded calls ---------------------------------------------------------------------------

def test_an_oversized_text_to_image_call_is_refused_from_the_numbers_alone(sd_bundle):
    s = Sampler(str(sd_bundle))
    t0 = time.perf_counter()
    with pytest.raises(GenError, match=r"1048576 pixels is over this model's limit of 16384; raise it in Python with "
                                       r"Sampler\(\.\.\., limits=\{'pixels': N\}\), or for a served model with "
                                       r"`gen serve build --max-pixels N`"):
        s.generate("a red house", height=1024, width=1024)
    assert time.perf_counter() - t0 < 1.0 and s.backend.component_calls == {}  # no network ran
    with pytest.raises(GenError, match="n = 17 is over this model's limit of 16"):
        s.generate("a", n=17)
    with pytest.raises(GenError, match="n x prompts = 20 images is over"):
        s.generate(["a", "b"], n=10)
    with pytest.raises(GenError, match="steps = 501 is over"):
        s.generate("a", steps=501)
    assert Sampler(str(sd_bundle), limits={"pixels": 128 * 128}).limits.pixels == 16384
    with pytest.raises(GenError, match="unknown limit 'memory'"):
        Sampler(str(sd_bundle), limits={"memory": 1})


def test_huge_n_and_threads_are_refused(bundles):
    with pytest.raises(GenError, match="n = 1000000 is over this model's limit of 256"):
        Sampler(str(bundles["gan"])).generate(n=10**6)
    with pytest.raises(GenError, match="threads must be at least 1 and at most 1024"):
        Sampler(str(bundles["gan"]), threads=10**9)


# -- numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"guidance": float("nan")}, "guidance must be a finite number, got nan"),
    ({"guidance": float("inf")}, "guidance must be a finite number, got inf"),
    ({"eta": float("inf"), "scheduler": "ddim"}, "eta must be a finite number >= 0, got inf"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"eta": True, "scheduler": "ddim"}, r"eta must be a finite number >= 0, got True"),
    ({"labels": [[1, 2], [3]]}, r"labels must be one integer or a flat list of integers \(one per image\), got \[\[1, 2\], \[3\]\]"),
    ({"labels": [[1], [2]]}, r"labels must be one integer or a flat list of integers \(one per image\), got shape \[2, 1\]"),
    ({"labels": io.BytesIO(b"3")}, r"labels must be integers, got a BytesIO$"),  # what it is, not <_io.BytesIO object at 0x...>
])
def test_non_finite_and_mistyped_numbers_are_refused(bundles, kwargs, message):
    with pytest.raises(GenError, match=message):
        Sampler(str(bundles["cddpm"])).generate(n=1, steps=2, **kwargs)


def test_any_integer_is_a_seed_mapped_the_same_way(bundles):
    s = Sampler(str(bundles["gan"]))
    assert np.array_equal(s.generate(n=2, seed=-1), s.generate(n=2, seed=2**64 - 1))
    assert np.array_equal(s.generate(n=2, seed=2**70), s.generate(n=2, seed=0))


def test_cli_refuses_non_finite_guidance_and_training_rates(bundles, tmp_path):
    p = gen_here("generate", bundles["cddpm"], "--guidance", "nan", "--out", tmp_path / "g.png", check=False)
    assert p.returncode == 2 and "--guidance must be from 0 to 100, got nan" in p.stderr and not (tmp_path / "g.png").exists()
    with pytest.raises(GenError, match="--lr must be a finite number, got inf"):
        train("gan", "digits", str(tmp_path / "r"), {"lr": float("inf"), "steps": 2}, progress=False)
    with pytest.raises(GenError, match="--beta must be a finite number, got nan"):
        train("vae", "digits", str(tmp_path / "r"), {"beta": float("nan"), "steps": 2}, progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args,message", [
    (["generate"], "give a BUNDLE directory (written by `gen export`), or --url and --model"),
    (["generate", "{ddpm}", "--url", "http://127.0.0.1:1"], "give either a BUNDLE directory or --url, not both"),
    (["generate", "--url", "http://127.0.0.1:1"], "--url needs --model NAME"),
    (["generate", "--url", "http://127.0.0.1:1", "--model", "ddpm", "--backend", "eager", "--threads", "2"],
     "--backend, --threads apply to a local bundle"),
    (["generate", "{ddpm}", "--model", "ddpm"], "--model applies with --url (a served model); drop it"),
    (["bench", "{ddpm}", "--concurrency", "4"], "--concurrency applies with --url"),
    (["generate", "{ddpm}", "--frames", "8"], "--frames counts the images of a latent walk: give --interpolate A B"),
    (["generate", "{run}"], "is a training run, not a bundle: export it first (`gen export"),
    (["generate", "--url", "localhost:8000", "--model", "m"], "--url 'localhost:8000' is not a server URL"),
    (["export", "{sdrun}"], "holds an adaptation of a Stable Diffusion base (sd-lora), which gen does not train further "
                            "or score here: export it with `gen export --model sd-lora --lora {sdrun}`"),
    (["distill", "progressive", "{sdrun}"], "export it with `gen export --model sd-lora --lora {sdrun}`"),
    (["train", "dreambooth", "--num-class-images", "4"], "--num-class-images applies with --prior-preservation"),
    (["export", "--model", "tiny-sd", "--lora-scale", "0.5"], "--lora-scale applies when a LoRA is fused"),
    (["generate", "{ddpm}/gen.json"], "gen.json is a bundle's manifest: give the bundle's folder, {ddpm}"),
    (["generate", "{root}/pix2pix", "--image", "{img}", "--out", "{root}/new/"],
     "--out {root}/new/ names a folder; give a file name such as {root}/new/grid.png"),
    (["eval", "{root}/run-ddpm", "--psi", "0.5"], "--psi does not apply to an unconditional ddpm run"),
    (["export", "{ddpm}"], "{ddpm} is an exported bundle (gen.json), not a run: give the run directory it was exported from"),
    (["export", "{run}", "--classifier", "{ddpm}"], "--classifier: {ddpm} is an exported bundle (gen.json), not a run"),
    (["serve", "status", "localhost:8000"], "URL 'localhost:8000' is not a server URL: it must look like http://127.0.0.1:8000"),
    (["export", "{run}", "--tolerance", "-1"], "--tolerance must be from 0 to 10, got -1.0"),
    (["train", "vae", "--beta", "-1"], "--beta must be from 0 to 10000, got -1.0"),
    (["train", "ddpm", "--data", "digitz"], "--data folder not found: digitz; did you mean the built-in 'digits'?"),
    (["eval", "{root}/run-pix2pix", "--scheduler", "ddim", "--steps", "5"],
     "--steps, --scheduler do not apply to a pix2pix run (its gen eval takes no sampling options)"),
    (["eval", "{root}/run-pix2pix", "--n", "50"], "--n does not apply to a pix2pix run: gen eval scores it on the whole held-out set"),
    (["eval", "{root}/run-vae", "--steps", "10"], "--steps does not apply to a vae run (its gen eval takes no sampling options)"),
    (["eval", "{root}/run-cddpm", "--psi", "0.5"], "--psi does not apply to a ddpm run (its gen eval takes --guidance, --scheduler, --steps)"),
    (["eval", "{root}/run-ddpm", "--inception", "{root}/none.onnx"], "--inception {root}/none.onnx: file not found"),
    (["generate", "{ddpm}", "--steps", "0"], "--steps must be from 1 to 10000, got 0"),  # each option's range
    (["generate", "{ddpm}", "--label", "3"], "--label given, but this bundle is unconditional"),
    (["generate", "{root}/stylegan", "--interpolate", "1", "2", "--frames", "0"], "--frames must be from 1 to 4096, got 0"),
    (["generate", "{root}/stylegan", "--interpolate", "1", "2", "--n", "4"], "--n does not apply to a latent walk"),
    (["generate", "{root}/stylegan", "--interpolate", "1", "--out", "{root}/w.gif"],
     "--interpolate takes two seeds A B (whole numbers), got '1' '--out'; give both right after it"),
    (["generate", "{root}/vae", "--image", "{img}"], "--image applies to image-to-image bundles; to encode and decode an image "
                                                      "with this autoencoder use reconstruct(images) (gen generate --reconstruct"),
    (["generate", "{root}/pix2pix", "--image", "{img}", "--reconstruct"],
     "--reconstruct: reconstruct() applies to autoencoder bundles (ae, vae, vqvae); a pix2pix bundle has no encoder"),
    (["generate", "{ddpm}", "--threads", "0"], "--threads must be from 1 to 1024, got 0"),
    (["generate", "{ddpm}", "--scheduler", "ddpm", "--eta", "0.5"], "--eta 0.5 applies to the ddim scheduler only"),
    (["generate", "{root}/vae", "--reconstruct", "--image", "{img}", "--n", "3"], "--n does not apply with --reconstruct"),
    (["generate", "{root}/pix2pix", "--image", "{root}", "--psi", "0.5", "--n", "3"],
     "--n, --psi do not apply with --image FOLDER"),
    (["bench", "--url", "http://127.0.0.1:1", "--model", "m", "--plot", "p.png"], "--plot applies to a local bundle"),
    (["export", "{run}", "--int8-trt"], "--int8-trt: these options apply only with --int8"),
    (["export", "{ddpm}", "--trt", "--opset", "17", "--out", "{root}/elsewhere"],
     "--out, --opset: not used by --trt, which writes the engines into BUNDLE/trt/"),
    (["export", "{run}", "--out", ""], "--out is empty; give the bundle folder to write"),
    (["generate", "{root}/pix2pix", "--image", "{img}", "--n", "4"],
     "--n 4 with one --image: a translation is deterministic, so it would be 4 copies of one image"),
])
def test_cli_errors_name_the_flag_and_the_fix(bundles, tmp_path, args, message):
    from PIL import Image

    root = Path(bundles["ddpm"]).parent
    Image.new("L", (16, 16), 128).save(tmp_path / "in.png")
    (tmp_path / "sd-run").mkdir()  # what gen train sd-lora writes beside its lora.safetensors
    (tmp_path / "sd-run" / "config.json").write_text(json.dumps({"family": "sd-lora", "base": "tiny-sd"}))
    names = {"ddpm": bundles["ddpm"], "run": root / "run-ddpm", "root": root, "img": tmp_path / "in.png",
             "sdrun": tmp_path / "sd-run"}
    out = ["--out", tmp_path / "out.png"] if args[0] in ("generate", "export", "train", "distill") and "--out" not in args else []
    p = gen_here(*[a.format(**names) for a in args], *out, check=False)
    assert p.returncode == 2 and message.format(**names) in p.stderr, p.stderr
    assert not (tmp_path / "out.png").exists()


def test_a_diverging_loss_stops_the_run_and_keeps_the_run_it_replaces(tmp_path):
    out = tmp_path / "run"
    train("vae", "digits", str(out), {"width": 8, "batch_size": 8, "steps": 4, **FAST}, progress=False)
    before = (out / "weights.safetensors").read_bytes()
    with pytest.raises(GenError, match=r"training diverged at step \d+: loss = (nan|inf).*the run being replaced in .* is untouched"):
        train("vae", "digits", str(out), {"width": 8, "batch_size": 8, "steps": 50, "lr": 1e12, **FAST},
              force=True, progress=False)
    assert (out / "weights.safetensors").read_bytes() == before
    assert all(np.isfinite(v) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
               for v in r.values())


def test_a_new_run_that_diverges_before_its_first_checkpoint_leaves_no_dead_end(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    for out in (tmp_path / "new", mine):
        with pytest.raises(GenError, match=r"training diverged at step \d+: .*no checkpoint was written yet, so .* is left as it was"):
            train("vae", "digits", str(out), {"width": 8, "batch_size": 8, "steps": 50, "lr": 1e12, **FAST}, progress=False)
    assert not (tmp_path / "new").exists() and mine.is_dir() and not any(mine.iterdir())
    train("vae", "digits", str(tmp_path / "new"), {"width": 8, "batch_size": 8, "steps": 2, **FAST}, progress=False)  # no --force


def test_images_of_16_bit_and_float_modes_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    from gen.trainkit.data import open_image

    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(tmp_path / "a.png")
    assert np.asarray(open_image(tmp_path / "a.png")).max() == 128  # 16-bit mid-grey stays mid-grey
    Image.fromarray(np.full((8, 8), 0.25, np.float32), "F").save(tmp_path / "f.tiff")
    assert np.asarray(open_image(tmp_path / "f.tiff")).max() == 64


def test_a_decompression_bomb_is_refused_by_name(tmp_path, monkeypatch):
    from PIL import Image

    from gen.trainkit.data import open_image

    Image.new("L", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64 x 64 is then past Pillow's 2x error bound
    with pytest.raises(GenError, match="bomb.png is too large to read safely"):
        open_image(tmp_path / "bomb.png")


def test_generate_out_errors_and_formats(bundles, tmp_path):
    gen = [sys.executable, "-m", "gen", "generate", str(bundles["gan"]), "--n", "4"]
    p = subprocess.run([*gen, "--out", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2 and f"--out {tmp_path} names a folder; give a file name such as" in p.stderr
    p = subprocess.run([*gen, "--out", str(tmp_path / "g.tiff")], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown image type '.tiff'" in p.stderr
    p = subprocess.run([*gen, "--out", str(tmp_path / "g.jpg")], capture_output=True, text=True)
    assert p.returncode == 0 and (tmp_path / "g.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes


# -- verified files --------------------------------------------------------------------------

def test_same_size_corruption_of_a_component_is_refused_at_load(bundles, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(bundles["gan"], b)
    Sampler(str(b))  # verified and cached
    onnx = b / "generator.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(GenError, match="generator.onnx is corrupt or modified"):
        Sampler(str(b))


@pytest.mark.parametrize("backend", ["ort", "eager"])
def test_modified_eager_weights_are_refused_whichever_backend_runs(bundles, tmp_path, backend):
    from gen.fileio import load_safetensors, save_safetensors

    b = tmp_path / "b"
    shutil.copytree(bundles["ddpm"], b)
    listed = sorted(f["path"] for f in json.loads((b / "gen.json").read_text())["weights_files"])
    assert listed == ["weights/config.json", "weights/weights.safetensors"]
    path = b / "weights" / "weights.safetensors"
    tensors, meta = load_safetensors(path)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1  # same size, other numbers
    save_safetensors(path, tensors, meta)
    with pytest.raises(GenError, match="weights.safetensors is corrupt or modified .* re-export the bundle"):
        Sampler(str(b), backend=backend)
    path.unlink()
    with pytest.raises(GenError, match="eager weights file is missing: .*weights.safetensors; re-export the bundle"):
        Sampler(str(b), backend=backend)


# -- writes that cannot destroy or mix --------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gan"
    return train("gan", "digits", str(out), {"width": 8, "batch_size": 8, "steps": 2, **FAST}, progress=False).path


def test_force_replaces_only_what_gen_wrote(run_dir, tmp_path, bundles):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(GenError, match="not a gen bundle .* --force replaces only what gen wrote"):
        export_run(str(run_dir), str(mine), force=True, **QUIET)
    with pytest.raises(GenError, match="not a gen model repository"):
        build_repository([str(bundles["gan"])], str(mine), force=True)
    assert (mine / "thesis.tex").read_text() == "years of work"
    (mine / "gen.json").write_text("{}")  # the name alone does not make it gen's
    with pytest.raises(GenError, match=r"--force: .*mine holds gen.json \(not a gen bundle manifest\), which gen did not write"):
        export_run(str(run_dir), str(mine), force=True, **QUIET)
    bundle = tmp_path / "b"
    export_run(str(run_dir), str(bundle), **QUIET)
    (bundle / "notes.txt").write_text("mine")
    with pytest.raises(GenError, match=r"--force: .*b holds notes.txt, which gen did not write; .*move them out"):
        export_run(str(run_dir), str(bundle), force=True, **QUIET)
    (bundle / "notes.txt").unlink()
    export_run(str(run_dir), str(bundle), force=True, **QUIET)  # gen's own files alone: replaced
    repo = tmp_path / "repo"
    build_repository([str(bundles["gan"])], str(repo))
    (repo / "my_model").mkdir()
    with pytest.raises(GenError, match=r"--force: .*repo holds my_model, which gen did not write"):
        build_repository([str(bundles["gan"])], str(repo), force=True)
    (repo / "my_model").rmdir()
    build_repository([str(bundles["gan"])], str(repo), force=True)
    (mine / "gen-repository.json").write_text("[]")
    with pytest.raises(GenError, match=r"holds gen-repository.json \(not a gen repository's\)"):
        build_repository([str(bundles["gan"])], str(mine), force=True)
    assert (mine / "thesis.tex").read_text() == "years of work" and (mine / "gen.json").read_text() == "{}"
    for out in (run_dir, run_dir / "bundle", run_dir.parent):
        with pytest.raises(GenError, match="is, contains or lies inside the input"):
            export_run(str(run_dir), str(out), force=True, **QUIET)
    assert (run_dir / "weights.safetensors").is_file()


def test_a_second_writer_to_the_same_output_is_refused_at_once(run_dir, tmp_path):
    out = tmp_path / "bundle"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom gen.outputs import output_lock\n"
                               f"with output_lock({str(out)!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        with pytest.raises(GenError, match=rf"--out {out} is being written by another gen process \(pid {holder.pid}\)"):
            export_run(str(run_dir), str(out), **QUIET)
        with pytest.raises(GenError, match="is being written by another gen process"):
            train("gan", "digits", str(out), {"steps": 1}, progress=False)
        with pytest.raises(GenError, match=rf"is being written by another gen process \(pid {holder.pid}\)"):
            train("gan", "digits", str(out), {"steps": 1}, resume=True, progress=False)  # not "no checkpoint"
        assert time.perf_counter() - t0 < 10
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()
    export_run(str(run_dir), str(out), **QUIET)  # the lock died with its holder
    assert (out / "gen.json").is_file()


def test_stale_staging_from_a_killed_export_is_cleaned(run_dir, tmp_path):
    out = tmp_path / "b"
    stale = tmp_path / ".b.export-999999"
    stale.mkdir()
    (stale / "half.onnx").write_bytes(b"x")
    export_run(str(run_dir), str(out), **QUIET)
    assert not stale.exists() and (out / "gen.json").is_file()


@pytest.mark.parametrize("change,message", [
    (lambda c: c.pop("z_dim"), "lacks 'z_dim'"),
    (lambda c: c.update(width="16"), "has width = '16', expected int"),
    (lambda c: c.update(image_size=True), "has image_size = True, expected int"),
    (lambda c: c.pop("family"), "has no 'family'"),
])
def test_a_damaged_run_config_is_refused_by_key(run_dir, tmp_path, change, message):
    from gen.trainkit.eval.evaluate import evaluate_run

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(GenError, match=message):
        export_run(str(run), str(tmp_path / "b"), **QUIET)
    with pytest.raises(GenError, match=message):
        evaluate_run(str(run), n=10)
    assert not (tmp_path / "b").exists()


def test_out_dot_and_glob_characters_in_names(run_dir, tmp_path, monkeypatch):
    """`--out .` (the folder a shell stands in) is refused, not renamed from under it; a relative
    --out gets its lock and staging beside it; a name with glob characters matches only itself."""
    import os

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for out in (".", ".."):
        with pytest.raises(GenError, match="is \\(or contains\\) the current directory"):
            export_run(str(run_dir), out, **QUIET)
    export_run(str(run_dir), "b/", **QUIET)
    export_run(str(run_dir), "b/", force=True, **QUIET)
    assert sorted(os.listdir(here)) == ["b"] and (here / "b" / "gen.json").is_file()
    other = tmp_path / ".run1.new-123"
    other.mkdir()  # another output's staging, named like a match for "run[1]" as a glob
    export_run(str(run_dir), str(tmp_path / "run[1]"), **QUIET)
    assert other.is_dir()


def test_a_swap_killed_half_way_is_put_back(run_dir, tmp_path):
    out = export_run(str(run_dir), str(tmp_path / "b"), **QUIET)
    before = (out / "gen.json").read_text()
    out.rename(tmp_path / ".b.old-4242")  # killed between the two renames of a --force
    export_run(str(run_dir), str(out), force=True, **QUIET)  # the lock holder restores, then replaces
    assert (out / "gen.json").is_file() and not (tmp_path / ".b.old-4242").exists()
    assert json.loads((out / "gen.json").read_text())["family"] == json.loads(before)["family"]


def test_force_does_not_take_a_foreign_config_json_for_a_run(tmp_path):
    model = tmp_path / "hf-model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["UNet2DModel"]}')
    with pytest.raises(GenError, match="holds files that are not a gen run"):
        train("gan", "digits", str(model), {"steps": 1}, force=True, progress=False)
    assert (model / "config.json").read_text() == '{"architectures": ["UNet2DModel"]}'


def test_training_never_writes_into_its_own_inputs(tmp_path):
    from PIL import Image

    from gen.trainkit.families.ddpm.classifier import train_noisy_classifier

    data = tmp_path / "pictures"
    data.mkdir()
    for i in range(4):
        Image.new("L", (8, 8), 40 * i).save(data / f"{i}.png")
    with pytest.raises(GenError, match=r"--out .*pictures/run is, contains or lies inside the input .*pictures"):
        train("vae", str(data), str(data / "run"), {"steps": 1}, progress=False)
    run = train("ddpm", "digits", str(tmp_path / "ddpm"), {"widths": [8, 16], "batch_size": 8, "steps": 2, **FAST},
                progress=False).path
    before = (run / "weights.safetensors").read_bytes()
    with pytest.raises(GenError, match=r"--out .*ddpm is, contains or lies inside the input"):
        train_noisy_classifier(str(run), str(run), {"steps": 2}, force=True, progress=False)
    assert (run / "weights.safetensors").read_bytes() == before and sorted(data.iterdir()) == sorted(
        data / f"{i}.png" for i in range(4))


def test_one_label_in_a_list_is_every_images_label(bundles):
    s = Sampler(str(bundles["cgan"]))
    assert np.array_equal(s.generate(n=3, labels=[4]), s.generate(n=3, labels=4))
