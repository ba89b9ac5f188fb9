"""The typed training configs: what a family declares is what `gen train` offers, checks and saves."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gen.errors import GenError
from gen.trainkit.config import PAIRED, UNPAIRED
from gen.trainkit.data import load_dataset
from gen.trainkit.families import config_class, families
from gen.trainkit.train import build_config


def test_gen_families_are_registered_with_their_capabilities():
    assert set(families()) >= {"ae", "cyclegan", "ddpm", "gan", "pix2pix", "stylegan", "vae", "vqvae"}
    assert config_class("pix2pix").data == PAIRED and config_class("cyclegan").data == UNPAIRED
    assert {f for f in families() if config_class(f).labels} >= {"gan", "ddpm"}
    assert [f for f in families() if config_class(f).teaches] == ["ddpm"]


def test_a_subclass_default_keeps_the_base_fields_help_and_rule():
    spec = config_class("gan").specs()["steps"]
    assert spec["default"] == 3000 and spec["rule"] == "positive" and spec["help"].startswith("Optimisation steps")


def test_the_run_config_has_the_fields_then_the_datas_facts():
    config = build_config("gan", load_dataset("digits"), "digits", {"loss": "wgan-gp"})
    assert config["n_critic"] == 5  # complete(): WGAN-GP's critic steps unless given
    assert build_config("gan", load_dataset("digits"), "digits", {"loss": "wgan-gp", "n_critic": 2})["n_critic"] == 2
    assert {"family": "gan", "data": "digits", "image_size": 8, "channels": 1, "num_classes": 10}.items() <= config.items()
    assert {"z_dim", "width", "gp_weight", "seed", "log_every"} <= set(config)


@pytest.mark.parametrize("family,options,message", [
    ("gan", {"nope": 1}, "unknown options for gan: nope"),
    ("gan", {"loss": "wasserstein"}, "unknown --loss 'wasserstein'; choose one of bce, lsgan, wgan-gp, hinge"),
    ("vae", {"beta": -1.0}, "--beta must be >= 0, got -1.0"),
    ("vqvae", {"ema_decay": 1.0}, r"--ema-decay must be in \[0, 1\), got 1.0"),
    ("ddpm", {"lr": 0.0}, "--lr must be a positive finite number, got 0.0"),
    ("stylegan", {"r1_every": 0}, "--r1-every must be a positive integer, got 0"),
    ("gan", {"batch_size": 1}, "--batch-size must be at least 2"),
    ("vae", {"beta": float("nan")}, "--beta must be a finite number, got nan"),
    ("stylegan", {"conditional": True}, "stylegan trains unconditional models only; drop --conditional"),
])
def test_a_bad_option_is_refused_naming_its_flag(family, options, message):
    with pytest.raises(GenError, match=message):
        build_config(family, load_dataset("digits"), "digits", options)


def test_train_help_is_generated_from_the_config_without_torch():
    code = ("import sys\nfrom gen.cli import main\nsys.argv = ['gen', 'train', 'vqvae', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": ""})
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())  # help wraps at 80 columns
    for shown in ("--codebook-size <int> Codes in the codebook (K) (default 64)",
                  "--commitment <float> Commitment loss weight (beta) (default 0.25)",
                  "--ema-decay <float> EMA decay of the codebook updates (default 0.99)"):
        assert shown in text
