"""StyleGAN nets: mapping(z, psi) -> w, truncated towards the tracked mean w inside the graph (so the
mean ships in the bundle's weights), and synthesis(ws) -> images, one w per layer (gen.nets.stylegan)."""

from __future__ import annotations

from torch import nn

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets


class MappingComponent(nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, z, psi):
        m = self.generator.mapping
        return m.truncate(m(z), psi)


class SynthesisComponent(nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, ws):
        return self.generator.synthesis(ws)


class StyleGanNets(RunNets):
    name = "stylegan"

    def build_net(self, c):
        from gen.nets.stylegan import StyleGenerator

        net = StyleGenerator(c["image_size"], c["channels"], c["z_dim"], c["w_dim"], c["width"], c["mapping_layers"])
        return net, "generator", {"mapping": MappingComponent(net), "synthesis": SynthesisComponent(net)}

    def signatures(self, c):
        from gen.nets.stylegan import num_ws

        w = io_spec("w", "float32", ["batch", c["w_dim"]])
        return {"mapping": {"inputs": [io_spec("z", "float32", ["batch", c["z_dim"]]), io_spec("psi", "float32", ["batch"])],
                            "outputs": [w]},
                "synthesis": {"inputs": [io_spec("ws", "float32", ["batch", num_ws(c["image_size"]), c["w_dim"]])],
                              "outputs": [image_spec(c)]}}

    def sampling(self, c):
        from gen.nets.stylegan import num_ws
        from gen.runtime.families.stylegan import StyleGanSampling

        return StyleGanSampling(z_dim=c["z_dim"], num_ws=num_ws(c["image_size"]))


NETS = StyleGanNets()
