"""Denoising autoencoder bundles: `generate(image=)` restores corrupted images, one `denoiser(image)`
call per batch. Input fitting and batching are pix2pix's (gen.runtime.families.pix2pix); the
manifest says which corruption and up to which level the model was trained to undo."""

from __future__ import annotations

from dataclasses import dataclass

from gen.runtime.families.pix2pix import Pix2Pix, Pix2PixSampling


@dataclass
class DaeSampling(Pix2PixSampling):
    corruption: str = "gaussian"  # gaussian, masking or salt-pepper
    level: float = 0.0  # the highest level it trained on: gaussian sigma, or the fraction of pixels hit


class Dae(Pix2Pix):
    name = "dae"
    components = ("denoiser",)
    Sampling = DaeSampling
    example = "--image NOISY.png --out RESTORED.png"
    required = {"image": "a denoising autoencoder restores images: pass image= (a path, a PIL image or an array; "
                         "--image FILE on the command line)"}

    def component(self, args) -> str:
        return "denoiser"


FAMILY = Dae()
