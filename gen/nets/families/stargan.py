"""StarGAN nets: one component, generator(image, domain), gen.nets.stargan's generator."""

from __future__ import annotations

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets


class StarGANNets(RunNets):
    name = "stargan"

    def build_net(self, c):
        from gen.nets.stargan import StarGenerator

        net = StarGenerator(c["channels"], c["num_classes"], c["width"], c["blocks"])
        return net, "generator", {"generator": net}

    def signatures(self, c):
        size = c["image_size"]
        return {"generator": {"inputs": [io_spec("image", "float32", ["batch", c["channels"], size, size]),
                                         io_spec("domain", "int64", ["batch"], range=[0, c["num_classes"]])],
                              "outputs": [image_spec(c)]}}

    def sampling(self, c):
        from gen.runtime.families.stargan import StarGANSampling

        return StarGANSampling(input_channels=c["channels"], data=c["data"], domains=list(c["class_names"]))


NETS = StarGANNets()
