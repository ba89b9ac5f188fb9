"""CycleGAN (two ResNet generators from unpaired domains): the training config. Trainer: .trainer."""

from __future__ import annotations

from dataclasses import dataclass

from gen.trainkit.config import NON_NEGATIVE, POSITIVE, UNPAIRED, TrainConfig, option


@dataclass
class CycleGanConfig(TrainConfig):
    name = "cyclegan"
    trainer = "gen.trainkit.families.cyclegan.trainer:CycleGANTrainer"
    summary = """CycleGAN: two ResNet generators (A -> B, B -> A) from unpaired domains, LSGAN + cycle + identity losses.

    Example:  gen train cyclegan --data-a photos/summer --data-b photos/winter --image-size 64 --out runs/seasons
    Then:     gen export runs/seasons --out bundles/seasons;  gen generate bundles/seasons --image x.png --direction BtoA --out y.png
    """
    data = UNPAIRED  # two domains, no pairs: gen.trainkit.data.unpaired; the run's "data" is domain A, `data_b` domain B
    data_default = "digits-thin"
    data_help = ("Domain A: digits-thin or digits-thick (the bundled digits at 16x16, eroded or dilated; thin from the "
                 "even-numbered digits, thick from the odd, so no image has its counterpart), digits (plain), or a folder "
                 "of images.")

    steps: int = 3000
    batch_size: int = 8
    lr: float = 2e-4
    data_b: str = option("digits-thick", "Domain B, as --data-a")
    cycle_weight: float = option(10.0, "Weight of the cycle-consistency L1 (A -> B -> A and back)", NON_NEGATIVE)
    identity_weight: float = option(0.5, "Identity L1 weight, as a fraction of the cycle weight (0 turns it off)",
                                    NON_NEGATIVE)
    width: int = option(32, "Channels of the generators' first layer (x4 in the residual blocks)", POSITIVE)
    blocks: int = option(4, "Residual blocks per generator", POSITIVE)
    pool_size: int = option(50, "Fakes kept in each discriminator's image pool", POSITIVE)


CONFIG = CycleGanConfig
