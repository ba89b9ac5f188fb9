"""DDPM (diffusers' UNet2DModel, EMA weights, DDIM samples): the training config. Trainer: .trainer."""

from __future__ import annotations

from dataclasses import dataclass

from gen.trainkit.config import FRACTION, NON_NEGATIVE, POSITIVE, TrainConfig, option

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon", "v")


@dataclass
class DdpmConfig(TrainConfig):
    name = "ddpm"
    trainer = "gen.trainkit.families.ddpm.trainer:DdpmTrainer"
    summary = "DDPM on diffusers' UNet2DModel, with EMA weights; samples with DDIM."
    labels = True
    teaches = True  # can teach a few-step student (gen distill)
    stages = {"classifier": "gen.trainkit.families.ddpm.classifier:NoisyClassifierTrainer"}  # gen train noisy-classifier

    # 7000 steps with the cosine schedule: fd_digits 11.4 in about 10 min on 2 cores (linear, 3000
    # steps: 15.5). At 8x8 the linear schedule spends most timesteps on near-pure noise (Nichol &
    # Dhariwal 2021); cosine keeps the signal longer, and a student inherits its teacher's quality.
    steps: int = 7000
    schedule: str = option("cosine", "Noise schedule: linear (Ho et al.) or cosine (Nichol & Dhariwal).", choices=SCHEDULES,
                           show_default=False)
    # v-prediction because cosine ends at SNR ~ 2e-6, where an epsilon model's x0 = (x - s eps) / a
    # divides by a ~ 0.0016: DDIM survives by clipping x0, DPM-Solver++ and Euler diverge (fd 141).
    prediction: str = option("v", "What the UNet predicts: epsilon (noise) or v (velocity).", choices=PREDICTIONS,
                             show_default=False)
    conditional: bool = option(False, "Class-conditional with label dropout, so classifier-free guidance works when sampling.",
                               show_default=False)
    warmup: int = option(100, "Steps of linear learning-rate warm-up", NON_NEGATIVE, cli=False)
    timesteps: int = option(1000, "Diffusion timesteps of the noise schedule", POSITIVE, cli=False)
    widths: list = option([32, 64, 64], "Channels of the UNet's blocks", cli=False)
    attention: bool = option(False, "Self-attention in the UNet's lowest block", cli=False)
    ema_decay: float = option(0.999, "EMA decay of the sampled weights", FRACTION, cli=False)
    label_dropout: float = option(0.1, "Share of labels dropped (classifier-free guidance)", FRACTION, cli=False)
    sample_steps: int = option(50, "DDIM steps of the sample grids and the bundle's default", POSITIVE, cli=False)
    guidance: float = option(1.0, "The bundle's default guidance scale", NON_NEGATIVE, cli=False)


CONFIG = DdpmConfig
