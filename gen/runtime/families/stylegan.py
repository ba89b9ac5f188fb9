"""StyleGAN bundles: z -> mapping(z, psi) -> w, repeated for every synthesis layer, -> synthesis(ws).

What StyleGAN users do, as generate() arguments (validated and served like any other):
- `psi` in [0, 1]: the truncation trick, w pulled towards the mean w by 1 - psi (1: none; 0: the
  average image). Lower psi trades variety for typical, cleaner images.
- `mix_seed`, `mix_layer`: style mixing. Layers from `mix_layer` on read the w of the image that
  `seed=mix_seed` would give (same n); coarse layers (low index) carry pose and shape, fine ones
  texture. `mix_layer=0` gives exactly the mix seed's own images. Default layer: half way.
- `interpolate`: a second seed; the n images walk linearly in w from the first image of `seed` to
  the first image of `interpolate` (the latent walk of `gen generate --interpolate A B`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.errors import GenError
from gen.runtime.families import Family


@dataclass
class StyleGanSampling:
    z_dim: int
    num_ws: int  # synthesis layers that read a w: the range of mix_layer


class StyleGan(Family):
    name = "stylegan"
    components = ("mapping", "synthesis")
    Sampling = StyleGanSampling
    takes = ("psi", "mix_seed", "mix_layer", "interpolate")

    def check(self, bundle, args):
        num = bundle.sampling.num_ws
        if "mix_layer" in args and "mix_seed" not in args:
            raise GenError("mix_layer (--mix-layer) applies with mix_seed (--mix-seed): the seed whose styles the layers from mix_layer on take")
        if "mix_seed" in args:
            if "interpolate" in args:
                raise GenError("interpolate and mix_seed do not combine: walk between two seeds, or mix two")
            layer = args.setdefault("mix_layer", num // 2)
            if not 0 <= layer < num:
                raise GenError(f"mix_layer must be between 0 and {num - 1} (this model's synthesis has {num} style inputs), "
                               f"got {layer}", "mix_layer")

    def sample(self, backend, n, rng, args, on_step=None):
        s = backend.bundle.sampling
        psi = args.get("psi", 1.0)

        def mapping(z):
            return backend.run("mapping", {"z": z, "psi": np.full(len(z), psi, np.float32)})

        if "interpolate" in args:
            ends = mapping(np.concatenate([rng.standard_normal((1, s.z_dim), dtype=np.float32),
                                           np.random.default_rng(args["interpolate"]).standard_normal((1, s.z_dim), dtype=np.float32)]))
            t = np.linspace(0, 1, n, dtype=np.float32)[:, None]
            w = (1 - t) * ends[0] + t * ends[1]
        else:
            w = mapping(rng.standard_normal((n, s.z_dim), dtype=np.float32))
        ws = np.repeat(w[:, None], s.num_ws, axis=1)
        if "mix_seed" in args:
            other = mapping(np.random.default_rng(args["mix_seed"]).standard_normal((n, s.z_dim), dtype=np.float32))
            ws[:, args["mix_layer"]:] = other[:, None]
        return backend.run("synthesis", {"ws": np.ascontiguousarray(ws, dtype=np.float32)})


FAMILY = StyleGan()
