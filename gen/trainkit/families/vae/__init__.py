"""VAE (Bernoulli likelihood + beta-weighted KL): the training config. Trainer: .trainer."""

from __future__ import annotations

from dataclasses import dataclass

from gen.trainkit.config import NON_NEGATIVE, POSITIVE, TrainConfig, option


@dataclass
class VaeConfig(TrainConfig):
    name = "vae"
    trainer = "gen.trainkit.families.vae.trainer:VaeTrainer"
    summary = "Convolutional VAE."

    steps: int = 2000
    beta: float = option(1.0, "KL weight (1 = the ELBO; >1 = beta-VAE)", NON_NEGATIVE)
    latent_dim: int = option(16, "Latent dimensions", POSITIVE)
    width: int = option(32, "Channels of the first layer", POSITIVE, cli=False)
    conditional: bool = option(False, "unconditional: runs record it for the nets", cli=False)


CONFIG = VaeConfig
