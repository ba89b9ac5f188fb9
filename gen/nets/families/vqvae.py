"""VQ-VAE nets: encoder(images) -> codes, decoder(codes) -> images, and with a prior run,
prior(tokens) -> logits (gen.nets.vqvae). The codebook lookup is inside the decoder and the nearest-
code search inside the encoder, so the bundle's interface is integer codes."""

from __future__ import annotations

from torch import nn

from gen.nets.components import image_spec, io_spec
from gen.nets.families import RunNets


class VqVaeModel(nn.Module):
    """What a VQ-VAE run's weights fill: the VQ-VAE, and the prior when the run trained one."""

    def __init__(self, c: dict):
        super().__init__()
        from gen.nets.vqvae import build_prior, build_vqvae

        self.vqvae = build_vqvae(c)
        if c.get("stage") == "prior":
            self.prior = build_prior(c)


class Encoder(nn.Module):
    def __init__(self, vqvae):
        super().__init__()
        self.vqvae = vqvae

    def forward(self, images):
        return self.vqvae.encode(images)


class Decoder(nn.Module):
    def __init__(self, vqvae):
        super().__init__()
        self.vqvae = vqvae

    def forward(self, codes):
        return self.vqvae.decode(codes)


class Prior(nn.Module):
    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, tokens):
        return self.prior(tokens)


class VqVaeNets(RunNets):
    name = "vqvae"

    def build_net(self, c):
        net = VqVaeModel(c)
        components = {"encoder": Encoder(net.vqvae), "decoder": Decoder(net.vqvae)}
        if hasattr(net, "prior"):
            components["prior"] = Prior(net.prior)
        return net, "model", components

    def build(self, config, tensors=None):
        if tensors is not None and config.get("stage") == "prior":  # never decode a prior's codes with another codebook
            from gen.nets.vqvae import check_codebook

            check_codebook(config, tensors, "the run's weights")
        return super().build(config, tensors)

    def signatures(self, c):
        g, k, size = c["grid"], c["codebook_size"], c["image_size"]
        codes = io_spec("codes", "int64", ["batch", g, g], [0, k])
        sigs = {"encoder": {"inputs": [io_spec("images", "float32", ["batch", c["channels"], size, size])], "outputs": [codes]},
                "decoder": {"inputs": [codes], "outputs": [image_spec(c)]}}
        if c.get("stage") == "prior":
            sigs["prior"] = {"inputs": [io_spec("tokens", "int64", ["batch", g * g], [0, k + 1])],
                             "outputs": [io_spec("logits", "float32", ["batch", g * g, k])]}
        return sigs

    def sampling(self, c):
        from gen.runtime.families.vqvae import VqVaeSampling

        return VqVaeSampling(grid=c["grid"], codebook_size=c["codebook_size"], prior=c.get("stage") == "prior")


NETS = VqVaeNets()
