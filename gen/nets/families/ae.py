"""AE nets: the VAE's components (gen.nets.families.vae) around gen.nets.vae.Autoencoder."""

from __future__ import annotations

from gen.nets.families.vae import VaeNets


class AeNets(VaeNets):
    name = "ae"

    def net_class(self):
        from gen.nets.vae import Autoencoder

        return Autoencoder

    def sampling(self, c):
        from gen.runtime.families.ae import AeSampling

        return AeSampling(latent_dim=c["latent_dim"])


NETS = AeNets()
