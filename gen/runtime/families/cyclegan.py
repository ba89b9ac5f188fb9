"""CycleGAN bundles: both generators, A -> B (`generator_ab`) and B -> A (`generator_ba`); `direction`
("AtoB", the default, or "BtoA") picks one. Input images are fitted to the model by pix2pix's rule
(gen.runtime.families.pix2pix)."""

from __future__ import annotations

from dataclasses import dataclass

from gen.errors import GenError
from gen.runtime.families.pix2pix import Pix2Pix, Pix2PixSampling

DIRECTIONS = {"AtoB": "generator_ab", "BtoA": "generator_ba"}


@dataclass
class CycleGANSampling(Pix2PixSampling):
    data_b: str = ""  # domain B's data (domain A's is `data`)


class CycleGAN(Pix2Pix):
    name = "cyclegan"
    components = tuple(DIRECTIONS.values())
    Sampling = CycleGANSampling
    takes = ("image", "direction")
    example = "--image IN.png --direction AtoB --out OUT.png"

    def check(self, bundle, args):
        direction = args.setdefault("direction", "AtoB")
        if direction not in DIRECTIONS:
            raise GenError(f"direction must be AtoB (domain A {bundle.sampling.data!r} -> B {bundle.sampling.data_b!r}) "
                           f"or BtoA, got {direction!r}", "direction")
        super().check(bundle, args)

    def component(self, args) -> str:
        return DIRECTIONS[args.get("direction", "AtoB")]


FAMILY = CycleGAN()
