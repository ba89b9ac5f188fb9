"""StarGAN bundles: one `generator(image, domain)` translating into any of the bundle's domains;
`target_domain` (a domain's name or index, required) picks it. Input images are fitted to the model by
pix2pix's rule (gen.runtime.families.pix2pix)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gen.errors import GenError, shown
from gen.runtime.families.pix2pix import Pix2Pix, Pix2PixSampling


@dataclass
class StarGANSampling(Pix2PixSampling):
    domains: list[str] = field(default_factory=list)  # the generator's domains, by index


class StarGAN(Pix2Pix):
    name = "stargan"
    Sampling = StarGANSampling
    takes = ("image", "target_domain")

    def check(self, bundle, args):
        domains = bundle.sampling.domains
        listed = f"{', '.join(domains)} (or an index 0..{len(domains) - 1})"
        if "target_domain" not in args:
            raise GenError(f"pass target_domain=, the domain to translate into: {listed}", "target_domain")
        given = str(args["target_domain"])
        if given in domains:
            args["target_domain"] = domains.index(given)
        elif given.isdigit() and int(given) < len(domains):
            args["target_domain"] = int(given)
        else:
            raise GenError(f"unknown target_domain {shown(given)}; this bundle's domains are {listed}", "target_domain")
        super().check(bundle, args)

    def feeds(self, image, args):
        return {"image": image, "domain": np.full(len(image), args["target_domain"], np.int64)}

    def argument(self, bundle, name):
        return {"choices": list(bundle.sampling.domains)} if name == "target_domain" else super().argument(bundle, name)

    def example_for(self, bundle):
        return f"--image IN.png --target-domain {bundle.sampling.domains[-1]} --out OUT.png"

    def bench_arguments(self, steps, bundle=None):
        return {**super().bench_arguments(steps, bundle), "target_domain": "0"}


FAMILY = StarGAN()
