"""srgan nets: generator(image) -> image, gen.nets.srgan's SRGenerator; its input is the low-resolution
image (image_size / scale on a side), its output the run's image size."""

from __future__ import annotations

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets
from gen.nets.families.pix2pix import GeneratorComponent


class SrganNets(RunNets):
    name = "srgan"

    def build_net(self, c):
        from gen.nets.srgan import SRGenerator

        net = SRGenerator(c["channels"], c["width"], c["blocks"], c["scale"])
        return net, "generator", {"generator": GeneratorComponent(net)}

    def signatures(self, c):
        small = c["image_size"] // c["scale"]
        return {"generator": {"inputs": [io_spec("image", "float32", ["batch", c["channels"], small, small])],
                              "outputs": [image_spec(c)]}}

    def sampling(self, c):
        from gen.runtime.families.srgan import SrganSampling

        return SrganSampling(input_channels=c["channels"], data=c["data"], scale=c["scale"])


NETS = SrganNets()
