"""The SD verbs as a user types them."""

import json

from tests.cli.test_cli import gen


def test_train_sd_lora_then_generate(tmp_path, sd_bundle):
    p = gen("train", "sd-lora", "--out", tmp_path / "run", "--steps", "5", "--max-images", "8", "--quiet")
    assert "LoRA written to" in p.stdout and (tmp_path / "run" / "lora.safetensors").is_file()
    p = gen("generate", sd_bundle, "--prompt", "a red house", "--negative-prompt", "blurry", "--n", "2", "--steps", "3",
            "--out", tmp_path / "grid.png")
    assert "2 images" in p.stdout and (tmp_path / "grid.png").stat().st_size > 0


def test_export_arguments_are_checked(tmp_path):
    for args, message in [((), "give either a RUN directory or --model"),
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
