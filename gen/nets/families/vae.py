"""VAE nets: encoder(images) -> z (the posterior mean, for reconstruct) and decoder(z) -> images.
The AE family (gen.nets.families.ae) is the same with gen.nets.vae.Autoencoder."""

from __future__ import annotations

from torch import nn

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets


class DecoderComponent(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.vae = net

    def forward(self, z):
        return self.vae.decode(z)


class EncoderComponent(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.vae = net

    def forward(self, images):
        return self.vae.embed(images)


class VaeNets(RunNets):
    name = "vae"

    def net_class(self):
        from gen.nets.vae import VAE

        return VAE

    def build_net(self, c):
        net = self.net_class()(c["image_size"], c["channels"], c["latent_dim"], c["width"])
        return net, "vae", {"decoder": DecoderComponent(net), "encoder": EncoderComponent(net)}

    def signatures(self, c):
        z = io_spec("z", "float32", ["batch", c["latent_dim"]])
        size = c["image_size"]
        return {"decoder": {"inputs": [z], "outputs": [image_spec(c)]},
                "encoder": {"inputs": [io_spec("images", "float32", ["batch", c["channels"], size, size])], "outputs": [z]}}

    def sampling(self, c):
        from gen.runtime.families.vae import VaeSampling

        return VaeSampling(latent_dim=c["latent_dim"])


NETS = VaeNets()
