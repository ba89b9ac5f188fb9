"""Plain autoencoder (the VAE's nets without the KL term): the training config. Trainer: .trainer."""

from __future__ import annotations

from dataclasses import dataclass

from gen.trainkit.config import POSITIVE, TrainConfig, option


@dataclass
class AeConfig(TrainConfig):
    name = "ae"
    trainer = "gen.trainkit.families.ae.trainer:AeTrainer"
    summary = """Plain autoencoder: the VAE's networks without the KL term. Reconstructs; cannot sample (no prior).

    Then:  gen eval runs/ae   (reconstruction PSNR);  gen generate BUNDLE --reconstruct --image digit.png --out r.png
    """

    steps: int = 2000
    latent_dim: int = option(16, "Latent dimensions", POSITIVE)
    width: int = option(32, "Channels of the first layer", POSITIVE, cli=False)
    conditional: bool = option(False, "unconditional: runs record it for the nets", cli=False)


CONFIG = AeConfig
