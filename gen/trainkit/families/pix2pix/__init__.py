"""pix2pix (U-Net generator + PatchGAN on paired images): the training config. Trainer: .trainer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gen.trainkit.config import NON_NEGATIVE, PAIRED, POSITIVE, TrainConfig, option


@dataclass
class Pix2PixConfig(TrainConfig):
    name = "pix2pix"
    trainer = "gen.trainkit.families.pix2pix.trainer:Pix2PixTrainer"
    summary = "pix2pix: U-Net generator + PatchGAN on paired images (colorization, super-resolution, edges -> photo)."
    data = PAIRED  # (input, target) pairs: gen.trainkit.data.paired
    data_default = "colorize"
    data_help = ("Paired data: colorize (gray -> colour), sr4x (4x super-resolution) or edges (edges -> photo), 32x32 "
                 "crops of scikit-image's bundled photos; or a folder with A/ and B/ sub-folders paired by file name; or "
                 "a folder of side-by-side pairs with --side-by-side.")

    steps: int = 2000
    batch_size: int = 16
    lr: float = 2e-4  # the paper's Adam (betas 0.5 / 0.999)
    direction: str = option("AtoB", "AtoB: A is the input, B the target; BtoA the other way", choices=("AtoB", "BtoA"))
    side_by_side: bool = option(False, "--data holds side-by-side pairs (A left, B right), as the pix2pix datasets ship.",
                                show_default=False)
    l1_weight: float = option(100.0, "Weight of the L1 term beside the GAN loss (the paper's lambda)", NON_NEGATIVE)
    # None: decided from the data in the trainer (restoration tasks: 0, the PSNR-optimal regression)
    gan_weight: Optional[float] = option(None, "Weight of the GAN term (0: L1 alone, the PSNR-optimal regression; the "
                                         "paper's L1-only ablation). Default: 0 for restoration tasks whose input has the "
                                         "output's channels (sr4x: the GAN texture costs PSNR), 1 otherwise.",
                                         NON_NEGATIVE, show_default=False)
    width: int = option(32, "Channels of the first U-Net block (doubling down to 8x)", POSITIVE)
    residual: Optional[bool] = option(None, "The generator adds its output to its input (default: when input and output "
                                      "have the same channels, e.g. sr4x).", show_default=False, negatable=True)


CONFIG = Pix2PixConfig
