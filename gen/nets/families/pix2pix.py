"""pix2pix nets: generator(image) -> image, the U-Net of gen.nets.pix2pix."""

from __future__ import annotations

from torch import nn

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets


class GeneratorComponent(nn.Module):
    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image):
        return self.generator(image)


class Pix2PixNets(RunNets):
    name = "pix2pix"

    def build_net(self, c):
        from gen.nets.pix2pix import UNetGenerator, residual

        net = UNetGenerator(c["image_size"], c["input_channels"], c["channels"], c["width"], residual(c))
        return net, "generator", {"generator": GeneratorComponent(net)}

    def signatures(self, c):
        size = c["image_size"]
        return {"generator": {"inputs": [io_spec("image", "float32", ["batch", c["input_channels"], size, size])],
                              "outputs": [image_spec(c)]}}

    def sampling(self, c):
        from gen.runtime.families.pix2pix import Pix2PixSampling

        return Pix2PixSampling(input_channels=c["input_channels"], data=c["data"])


NETS = Pix2PixNets()
