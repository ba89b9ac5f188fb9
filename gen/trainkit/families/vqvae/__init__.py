"""VQ-VAE (EMA codebook with dead-code restarts), then its prior: the training config. Trainer: .trainer."""

from __future__ import annotations

from dataclasses import dataclass

from gen.trainkit.config import FRACTION, NON_NEGATIVE, POSITIVE, TrainConfig, option


@dataclass
class VqVaeConfig(TrainConfig):
    name = "vqvae"
    trainer = "gen.trainkit.families.vqvae.trainer:VqVaeTrainer"
    summary = """VQ-VAE: encoder, EMA codebook with dead-code restarts, decoder. To sample, train its prior next.

    Then:  gen train vqvae-prior runs/vqvae --out runs/vqvae-prior;  gen export runs/vqvae-prior
    """
    stages = {"prior": "gen.trainkit.families.vqvae.prior:PriorTrainer"}  # gen train vqvae-prior

    steps: int = 3000
    grid: int = option(4, "Side of the code grid (the image halved down to it)", POSITIVE)
    codebook_size: int = option(64, "Codes in the codebook (K)", POSITIVE)
    code_dim: int = option(16, "Dimensions of each code vector", POSITIVE)
    commitment: float = option(0.25, "Commitment loss weight (beta)", NON_NEGATIVE)  # the paper's
    ema_decay: float = option(0.99, "EMA decay of the codebook updates", FRACTION)
    dead_code_threshold: float = option(1.0, "Restart a code whose EMA use falls below this many vectors per batch",
                                        NON_NEGATIVE)
    width: int = option(32, "Channels of the first layer", POSITIVE, cli=False)
    conditional: bool = option(False, "unconditional: runs record it for the nets", cli=False)


CONFIG = VqVaeConfig
