"""The SD verbs as a user types them."""

import json

from tests.cli.test_cli import gen_here as gen  # the CLI entry point in process: no new interpreter per call


def test_train_sd_lora_then_generate(tmp_path, sd_bundle):
    p = gen("train", "sd-lora", "--out", tmp_path / "run", "--steps", "5", "--max-images", "8", "--quiet")
    assert "LoRA written to" in p.stdout and (tmp_path / "run" / "lora.safetensors").is_file()
    p = gen("generate", sd_bundle, "--prompt", "a red house", "--negative-prompt", "blurry", "--n", "2", "--steps", "3",
            "--out", tmp_path / "grid.png")
    assert "2 images" in p.stdout and (tmp_path / "grid.png").stat().st_size > 0


def test_export_arguments_are_checked(tmp_path):
    for args, message in [((), "give a RUN directory (written by `gen train`) or --model NAME"),
                          (("runs/x", "--model", "sd"), "give either a RUN directory or --model"),
                          (("--model", "sdxl"), "unknown --model 'sdxl'"),
                          (("--model", "sd", "--base", tmp_path / "missing"), "folder not found")]:
        p = gen("export", *args, "--out", tmp_path / "b", check=False)
        assert p.returncode == 2 and message in p.stderr, p.stderr
        assert not (tmp_path / "b").exists()


def test_generate_validates_text_arguments(sd_bundle, tmp_path):
    p = gen("generate", sd_bundle, "--prompt", "x", "--height", "100", "--out", tmp_path / "g.png", check=False)
    assert p.returncode == 2 and "height must be a positive multiple of 16" in p.stderr
    p = gen("generate", sd_bundle, "--out", tmp_path / "g.png", check=False)
    assert p.returncode == 2 and "pass a prompt" in p.stderr
    info = json.loads((sd_bundle / "gen.json").read_text())
    assert info["sampling"]["default_scheduler"] == "dpm++"


def test_export_sd_lora_int8_then_generate_at_int8(tmp_path):
    """`gen export --model sd-lora --int8`: calibrated on prompts, the never-called vae_encoder kept float."""
    out = tmp_path / "q"
    p = gen("export", "--model", "sd-lora", "--out", out, "--int8", "--calibration", "2", "--int8-min-psnr", "0",
            "--int8-min-speedup", "0", "--int8-groups", "conv,linear")
    assert "recording calibration inputs: 2 image(s)" in p.stdout and "vae_encoder: kept float" in p.stdout
    m = json.loads((out / "gen.json").read_text())
    files = {c: v["files"] for c, v in m["components"].items()}
    assert files["unet"]["int8"]["path"] == "unet.int8.onnx" and files["vae_encoder"]["int8"] == files["vae_encoder"]["fp32"]
    assert m["parity"]["unet"]["ort_int8_vs_fp32"]["groups"] == ["conv", "linear"]
    assert m["export"]["int8"]["calls_recorded"]["text_encoder"] == 2
    p = gen("generate", out, "--prompt", "a red house", "--n", "1", "--steps", "2", "--precision", "int8",
            "--out", tmp_path / "g.png")
    assert "int8" in p.stdout and (tmp_path / "g.png").stat().st_size > 0
    p = gen("export", "--model", "sd-lora", "--out", tmp_path / "r", "--calibration", "4", check=False)
    assert p.returncode == 2 and "--calibration: these options apply only with --int8" in p.stderr


def test_generate_img2img_and_inpainting_from_files(sd_bundle, tmp_path):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[:32] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    p = gen("generate", sd_bundle, "--prompt", "a red house", "--image", tmp_path / "in.png", "--strength", "0.5",
            "--steps", "4", "--n", "1", "--out", tmp_path / "a.png")
    assert "1 image in" in p.stdout and Image.open(tmp_path / "a.png").size[0] > 0
    p = gen("generate", sd_bundle, "--prompt", "a red house", "--image", tmp_path / "in.png", "--mask",
            tmp_path / "mask.png", "--steps", "4", "--n", "1", "--out", tmp_path / "b.png")
    assert (tmp_path / "b.png").is_file()
    p = gen("generate", sd_bundle, "--prompt", "x", "--image", tmp_path / "in.png", "--strength", "2",
            "--out", tmp_path / "c.png", check=False)
    assert p.returncode == 2 and "--strength must be from 0 to 1, got 2.0" in p.stderr and not (tmp_path / "c.png").exists()
