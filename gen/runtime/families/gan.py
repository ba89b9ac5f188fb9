"""GAN bundles: one `generator(z[, labels])` call."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.runtime.arguments import class_labels
from gen.runtime.families import Family


@dataclass
class GanSampling:
    z_dim: int


class Gan(Family):
    name = "gan"
    components = ("generator",)
    Sampling = GanSampling

    def accepts(self, bundle):
        return ("labels",) if bundle.num_classes else ()

    def check(self, bundle, args):
        if bundle.num_classes:
            args["labels"] = class_labels(args.get("labels"), args["n"], bundle.num_classes)

    def sample(self, backend, n, rng, args, on_step=None):
        feeds = {"z": rng.standard_normal((n, backend.bundle.sampling.z_dim), dtype=np.float32)}
        if "labels" in args:
            feeds["labels"] = args["labels"]
        return backend.run("generator", feeds)


FAMILY = Gan()
