"""StarGAN (one generator among several domains, told the target by a label): the training config.
Trainer: .trainer; `gen eval`: .evaluate."""

from __future__ import annotations

from dataclasses import dataclass

from gen.trainkit.config import NON_NEGATIVE, POSITIVE, TrainConfig, option


@dataclass
class StarGanConfig(TrainConfig):
    name = "stargan"
    trainer = "gen.trainkit.families.stargan.trainer:StarGANTrainer"
    evaluation = "gen.trainkit.families.stargan.evaluate:evaluate_stargan"
    loader = "gen.trainkit.data.domains:load_domains"
    summary = """StarGAN: one ResNet generator translating among several domains, given the target domain as input.

    Example:  gen train stargan --data digits-strokes --out runs/stargan
    Then:     gen export runs/stargan --out bundles/stargan;  gen generate bundles/stargan --image x.png --target-domain thick --out y.png
    """
    data_default = "digits-strokes"
    data_help = ("digits-strokes (the bundled digits at 16x16 in three domains: thin, regular and thick strokes; digit i "
                 "in domain i mod 3, so no image is in two) or a folder with one sub-folder of images per domain.")

    steps: int = 6000  # 3000 left thin -> thick at 86% (docs/RESULTS.md)
    batch_size: int = 16
    lr: float = 2e-4
    cycle_weight: float = option(5.0, "Weight of the reconstruction L1: G(G(x, c'), c) against x (the paper: 10)", NON_NEGATIVE)
    identity_weight: float = option(0.25, "Identity L1 weight, G(x, c) against x, as a fraction of the cycle weight "
                                    "(0 turns it off)", NON_NEGATIVE)
    domain_weight: float = option(4.0, "Weight of the domain-classification loss (the discriminator's aux head; the paper: 1)",
                                  NON_NEGATIVE)
    projection: bool = option(True, "Condition the discriminator's real/fake head on the claimed domain (a projection "
                              "discriminator), so a translation must look like a real image of its target domain")
    width: int = option(32, "Channels of the generator's and discriminator's first layer", POSITIVE)
    blocks: int = option(3, "Residual blocks in the generator", POSITIVE)


CONFIG = StarGanConfig
