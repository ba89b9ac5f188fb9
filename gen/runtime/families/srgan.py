"""srgan bundles (super-resolution): `generate(image=small)` -> images `scale` times larger on a side.

The bundle's input is the LOW-resolution image (true super-resolution: 8x8 in, 32x32 out for the sr4x
default), not a bicubic upscale of it. Inputs are fitted by pix2pix's rule (gen.runtime.image_input:
channels converted, a square image of another size resized with Lanczos to the model's input size).
"""

from __future__ import annotations

from dataclasses import dataclass

from gen.runtime.families.pix2pix import Pix2Pix, Pix2PixSampling


@dataclass
class SrganSampling(Pix2PixSampling):
    scale: int = 4  # output side / input side


class Srgan(Pix2Pix):
    name = "srgan"
    Sampling = SrganSampling
    example = "--image SMALL.png --out BIG.png"

    def input_size(self, bundle) -> tuple[int, int]:
        s = bundle.sampling.scale
        return bundle.image.height // s, bundle.image.width // s


FAMILY = Srgan()
