"""Denoising autoencoder nets: denoiser(image) -> image, the whole AE (gen.nets.dae) in one call."""

from __future__ import annotations

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets
from gen.nets.families.pix2pix import GeneratorComponent


class DaeNets(RunNets):
    name = "dae"

    def build_net(self, c):
        from gen.nets.dae import DenoisingAutoencoder

        net = DenoisingAutoencoder(c["image_size"], c["channels"], c["latent_dim"], c["width"])
        return net, "vae", {"denoiser": GeneratorComponent(net)}  # "vae": the AE trainers' weights prefix

    def signatures(self, c):
        size = c["image_size"]
        return {"denoiser": {"inputs": [io_spec("image", "float32", ["batch", c["channels"], size, size])],
                             "outputs": [image_spec(c)]}}

    def sampling(self, c):
        from gen.runtime.families.dae import DaeSampling

        return DaeSampling(input_channels=c["channels"], data=c["data"], corruption=c["corruption"],
                           level=float(c["sigma"] if c["corruption"] == "gaussian" else c["amount"]))


NETS = DaeNets()
