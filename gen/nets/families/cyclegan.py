"""CycleGAN nets: two components, generator_ab(image) and generator_ba(image), the ResNet generators
of gen.nets.cyclegan, so one bundle translates both ways."""

from __future__ import annotations

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets
from gen.nets.families.pix2pix import GeneratorComponent

COMPONENTS = {"generator_ab": "ab", "generator_ba": "ba"}


class CycleGANNets(RunNets):
    name = "cyclegan"

    def build_net(self, c):
        from gen.nets.cyclegan import CycleGenerators

        net = CycleGenerators(c["channels"], c["width"], c["blocks"])
        return net, "generators", {name: GeneratorComponent(getattr(net, side)) for name, side in COMPONENTS.items()}

    def signatures(self, c):
        size = c["image_size"]
        image = io_spec("image", "float32", ["batch", c["channels"], size, size])
        return {name: {"inputs": [image], "outputs": [image_spec(c)]} for name in COMPONENTS}

    def sampling(self, c):
        from gen.runtime.families.cyclegan import CycleGANSampling

        return CycleGANSampling(input_channels=c["channels"], data=c["data"], data_b=c["data_b"])


NETS = CycleGANNets()
