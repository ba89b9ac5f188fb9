"""VAE nets: decoder(z) -> images (the encoder is for training)."""

from __future__ import annotations

from torch import nn

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets


class DecoderComponent(nn.Module):
    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z)


class VaeNets(RunNets):
    name = "vae"

    def build_net(self, c):
        from gen.nets.vae import VAE

        net = VAE(c["image_size"], c["channels"], c["latent_dim"], c["width"])
        return net, "vae", {"decoder": DecoderComponent(net)}

    def signatures(self, c):
        return {"decoder": {"inputs": [io_spec("z", "float32", ["batch", c["latent_dim"]])], "outputs": [image_spec(c)]}}

    def sampling(self, c):
        from gen.runtime.families.vae import VaeSampling

        return VaeSampling(latent_dim=c["latent_dim"])


NETS = VaeNets()
