"""SRGAN-style 4x super-resolution (residual generator with sub-pixel upsampling + a discriminator): the
training config. Trainer: .trainer; losses: .losses; the low-resolution inputs: .degrade."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gen.errors import GenError
from gen.trainkit.config import NON_NEGATIVE, PAIRED, POSITIVE, TrainConfig, option

LOSSES = ("l1", "msssim-l1", "perceptual")


@dataclass
class SrganConfig(TrainConfig):
    name = "srgan"
    trainer = "gen.trainkit.families.srgan.trainer:SrganTrainer"
    summary = """SRGAN-style super-resolution: the low-resolution image in, 4x larger out (sub-pixel convolutions).

    Example:  gen train srgan --data sr4x --loss msssim-l1 --out runs/srgan
    Then:     gen eval runs/srgan;  gen export runs/srgan --out bundles/srgan;  gen generate bundles/srgan --image small.png --out big.png
    """
    data = PAIRED  # (input, target) pairs; srgan reads the targets and shrinks them itself (.degrade)
    data_default = "sr4x"
    data_help = ("Sharp images to learn from, as paired data: sr4x (32x32 crops of scikit-image's bundled photos), or a "
                 "folder with A/ and B/ sub-folders (B is used; the low-resolution input is B shrunk 4x by bicubic, "
                 "as sr4x's own inputs were made), or side-by-side pairs with --side-by-side.")

    steps: int = 2000
    batch_size: int = 16
    lr: float = 2e-4
    loss: str = option("msssim-l1", "Content loss: l1; msssim-l1 (0.84 MS-SSIM + 0.16 L1, Zhao et al.); perceptual "
                       "(L1 + feature distance on a feature network: --features, else gen's own photo classifier)",
                       choices=LOSSES)
    adv_weight: Optional[float] = option(None, "Weight of the adversarial term (SRGAN's 1e-3; 0: no discriminator, "
                                         "SRResNet). Default: 1e-3 with --loss perceptual, 0 otherwise.", NON_NEGATIVE,
                                         show_default=False)
    perceptual_weight: float = option(1.0, "Weight of the feature distance with --loss perceptual (relative squared "
                                      "error of the features)", NON_NEGATIVE)
    features: Optional[str] = option(None, "Feature network for --loss perceptual: a local safetensors file, torchvision "
                                     "VGG layout (features.N.weight) or gen's FeatureClassifier; default: gen's photo "
                                     "classifier trained on the training targets", show_default=False)
    width: int = option(32, "Channels of the generator's residual blocks", POSITIVE)
    blocks: int = option(4, "Residual blocks of the generator", POSITIVE)
    scale: int = option(4, "Upscaling factor (a power of two: one sub-pixel convolution per 2x)", POSITIVE, cli=False)

    def complete(self, given: dict) -> None:
        if self.adv_weight is None:
            self.adv_weight = 1e-3 if self.loss == "perceptual" else 0.0
        if self.features is not None and self.loss != "perceptual":
            raise GenError(f"--features is the feature network of --loss perceptual; this run's loss is {self.loss}: "
                           "add --loss perceptual or drop --features")
        if self.features is not None and not Path(self.features).is_file():
            raise GenError(f"--features {self.features}: file not found (a safetensors feature network)")
        if self.scale < 2 or self.scale & (self.scale - 1):
            raise GenError(f"--scale must be a power of two >= 2, got {self.scale}")

    @classmethod
    def model_inputs(cls, config: dict, inputs, targets):
        """The generator reads the targets shrunk (its low-resolution input), not the pairs' upscaled inputs."""
        from gen.trainkit.families.srgan.degrade import shrink

        return shrink(targets, config["scale"])


CONFIG = SrganConfig
