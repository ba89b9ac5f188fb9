"""Denoising autoencoder (the AE trained to restore corrupted images): the training config.
Trainer: .trainer; its `gen eval`: .evaluate."""

from __future__ import annotations

from dataclasses import dataclass

from gen.errors import GenError
from gen.trainkit.config import POSITIVE, TrainConfig, option

CORRUPTIONS = ("gaussian", "masking", "salt-pepper")  # gen.trainkit.families.dae.corruption applies them
LEVELS = {"gaussian": "sigma", "masking": "amount", "salt-pepper": "amount"}  # the option that sets each one's level


@dataclass
class DaeConfig(TrainConfig):
    name = "dae"
    trainer = "gen.trainkit.families.dae.trainer:DaeTrainer"
    evaluation = "gen.trainkit.families.dae.evaluate:evaluate_dae"
    summary = """Denoising autoencoder: the AE trained to restore corrupted images (gaussian noise, masking, salt-and-pepper).

    Then:  gen eval runs/dae   (PSNR/SSIM: noisy input, restored, non-local means and TV at two levels)
           gen export runs/dae --out bundles/dae && gen generate bundles/dae --image noisy.png --out restored.png
    """
    min_image_size = 16  # the 8x8 digits upscaled: at 8 px a sigma-0.2 digit keeps too little to restore (+4.3 dB)
    data_help = ("'digits' (bundled 8x8 scikit-learn digits, upscaled to 16x16 unless --image-size says otherwise), 'photos' (32x32 colour crops of scikit-image's photos, "
                 "held out from the right of each), 'faces' or a folder of images: the clean images; the corruption is "
                 "drawn afresh every step.")

    steps: int = 3000
    corruption: str = option("gaussian", "What to undo: gaussian noise (--sigma), masking (--amount of pixels set "
                             "black) or salt-pepper (--amount of pixels set black or white).", choices=CORRUPTIONS)
    sigma: float = option(0.2, "Gaussian noise's standard deviation in units of the [0, 1] intensity range (0.2: 51 grey "
                          "levels); each training image draws its own in [0, sigma], so lower noise is restored too",
                          bounds=(0.01, 1.0))
    amount: float = option(0.2, "masking / salt-pepper: the fraction of pixels hit; each training image draws its own "
                           "in [0, amount]", bounds=(0.01, 0.99))
    latent_dim: int = option(32, "Latent dimensions: the bottleneck the noise cannot pass", POSITIVE)
    width: int = option(32, "Channels of the first layer", POSITIVE, cli=False)
    conditional: bool = option(False, "unconditional: runs record it for the nets", cli=False)

    def complete(self, given: dict) -> None:
        """A level option the chosen corruption does not read is refused, not silently ignored."""
        if self.corruption not in LEVELS:
            return  # validate() names the choices
        other = "amount" if LEVELS[self.corruption] == "sigma" else "sigma"
        if given.get(other) is not None:
            raise GenError(f"--{other} sets the level of {' and '.join(k for k, v in LEVELS.items() if v == other)}; "
                           f"--corruption {self.corruption} takes --{LEVELS[self.corruption]}")


def level(config: dict) -> float:
    """The corruption level a run trained up to: its --sigma or its --amount."""
    return float(config[LEVELS[config["corruption"]]])


CONFIG = DaeConfig
