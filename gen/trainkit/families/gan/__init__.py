"""GAN (DCGAN nets; BCE, LSGAN, WGAN-GP or hinge losses): the training config. Trainer: .trainer."""

from __future__ import annotations

from dataclasses import dataclass

from gen.trainkit.config import NON_NEGATIVE, POSITIVE, TrainConfig, option

LOSSES = ("bce", "lsgan", "wgan-gp", "hinge")


@dataclass
class GanConfig(TrainConfig):
    name = "gan"
    trainer = "gen.trainkit.families.gan.trainer:GanTrainer"
    summary = "DCGAN-style GAN (optionally class-conditional)."
    labels = True

    steps: int = 3000
    lr: float = 2e-4
    loss: str = option("bce", "bce: non-saturating DCGAN; lsgan: least squares; wgan-gp: Wasserstein + gradient penalty; "
                       "hinge: hinge + spectral norm.", choices=LOSSES, show_default=False)
    # WGAN-GP trains its critic 5 times per generator step (Gulrajani et al. 2017) unless told otherwise: complete()
    n_critic: int = option(1, "Critic updates per generator update; wgan-gp: 5 unless given", POSITIVE)
    conditional: bool = option(False, "Condition on class labels (needs labelled data).", show_default=False)
    feature_matching: bool = option(False, "Add feature matching to the generator's loss (Salimans et al. 2016): the "
                                    "mean of the discriminator's last features on generated images is pulled to "
                                    "their mean on the real batch (with its labels when conditional).",
                                    show_default=False)
    fm_weight: float = option(1.0, "Weight of the feature-matching term (squared L2 distance of the feature means)",
                              NON_NEGATIVE, cli=False)
    z_dim: int = option(64, "Dimensions of z", POSITIVE, cli=False)
    width: int = option(64, "Channels of the nets' widest layer", POSITIVE, cli=False)
    gp_weight: float = option(10.0, "Gradient penalty weight (wgan-gp)", NON_NEGATIVE, cli=False)

    def complete(self, given: dict) -> None:
        if self.loss == "wgan-gp" and given.get("n_critic") is None:
            self.n_critic = 5


CONFIG = GanConfig
