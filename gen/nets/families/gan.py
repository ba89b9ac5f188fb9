"""GAN nets: generator(z[, labels]) -> images."""

from __future__ import annotations

from torch import nn

from gen.nets.components import image_spec, io_spec, is_conditional
from gen.nets.families import RunNets


class GeneratorComponent(nn.Module):
    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z, labels=None):
        return self.generator(z, labels)


class GanNets(RunNets):
    name = "gan"

    def build_net(self, c):
        from gen.nets.gan import Generator

        k = c["num_classes"] if is_conditional(c) else 0
        net = Generator(c["image_size"], c["channels"], c["z_dim"], c["width"], k)
        return net, "generator", {"generator": GeneratorComponent(net)}

    def signatures(self, c):
        inputs = [io_spec("z", "float32", ["batch", c["z_dim"]])]
        if is_conditional(c):
            inputs.append(io_spec("labels", "int64", ["batch"], [0, c["num_classes"]]))
        return {"generator": {"inputs": inputs, "outputs": [image_spec(c)]}}

    def sampling(self, c):
        from gen.runtime.families.gan import GanSampling

        return GanSampling(z_dim=c["z_dim"])


NETS = GanNets()
