"""StyleGAN2-style GAN (mapping network, modulated convolutions, R1, EMA; ProGAN growth): the training
config. Trainer: .trainer."""

from __future__ import annotations

from dataclasses import dataclass

from gen.trainkit.config import FRACTION, NON_NEGATIVE, POSITIVE, TrainConfig, option


@dataclass
class StyleGanConfig(TrainConfig):
    name = "stylegan"
    trainer = "gen.trainkit.families.stylegan.trainer:StyleGanTrainer"
    summary = """StyleGAN2-style GAN: mapping network, modulated convolutions, noise, R1, EMA; optionally progressive.

    Then:  gen export runs/stylegan --out bundles/stylegan
           gen generate bundles/stylegan --psi 0.7 --out grid.png
           gen generate bundles/stylegan --seed 1 --mix-seed 2 --mix-layer 2 --out mixed.png
           gen generate bundles/stylegan --interpolate 1 2 --frames 16 --out walk.gif
    """

    steps: int = 4000
    batch_size: int = 32
    lr: float = 2e-3
    progressive: bool = option(False, "Grow from 4x4 to the full size over the first half of the steps, fading each "
                               "resolution in (ProGAN).", show_default=False)
    z_dim: int = option(64, "Dimensions of z", POSITIVE)
    w_dim: int = option(64, "Dimensions of w (the style space)", POSITIVE)
    mapping_layers: int = option(4, "Layers of the mapping network", POSITIVE)
    width: int = option(32, "Channels at the full resolution (doubling per halving, up to 256)", POSITIVE)
    r1_gamma: float = option(0.1, "R1 penalty weight on real images", NON_NEGATIVE)
    r1_every: int = option(16, "Apply R1 every N steps (lazy regularisation)", POSITIVE)
    ema_beta: float = option(0.995, "EMA decay of the sampled generator's weights", FRACTION)
    conditional: bool = option(False, "unconditional: runs record it for the nets", cli=False)


CONFIG = StyleGanConfig
