"""pix2pix bundles (image-to-image): one `generator(image)` call per batch of input images.

The input is what `generate(image=...)` was given (gen.runtime.image_input: a path, PIL image or
array, one or a batch), fitted to the model by `image_input.fit_to_model`.
`n` is the number of inputs; one input with n > 1 is translated n times (the result is the same:
the generator is deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.errors import GenError
from gen.runtime.families import Family


@dataclass
class Pix2PixSampling:
    input_channels: int
    data: str = ""  # what it was trained on (colorize, sr4x, a folder), for people reading the manifest


class Pix2Pix(Family):
    name = "pix2pix"
    components = ("generator",)
    Sampling = Pix2PixSampling
    takes = ("image",)
    example = "--image IN.png --out OUT.png"
    required = {"image": "this is an image-to-image bundle: pass image= (a path, a PIL image or an array; --image FILE on the command line)"}

    def check(self, bundle, args):
        from gen.runtime.image_input import fit_to_model

        image = fit_to_model(args["image"], bundle.sampling.input_channels, self.input_size(bundle))
        if len(image) > 1 and args["n"] not in (1, len(image)):
            raise GenError(f"n = {args['n']} but {len(image)} images were given; n is the number of images")
        args["n"] = max(args["n"], len(image))
        args["image"] = image

    def images_per_request(self, args):
        image = args.get("image")
        return max(args.get("n", 1), len(image) if image is not None else 1)

    def sample(self, backend, n, rng, args, on_step=None):
        image = args["image"]
        if len(image) != n:
            image = np.repeat(image, n, axis=0)
        x = image.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(127.5) - 1
        return backend.run(self.component(args), self.feeds(np.ascontiguousarray(x), args))

    def feeds(self, image: np.ndarray, args) -> dict:
        """The component's inputs for the fitted `image` (float NCHW in [-1, 1]): here the image alone
        (a multi-domain model adds its target domain)."""
        return {"image": image}

    def component(self, args) -> str:
        """The network that translates this request (CycleGAN has one per direction)."""
        return "generator"

    def bench_arguments(self, steps, bundle=None):
        """A mid-gray input at the model's input size (bench replicates it to the batch)."""
        return {"image": np.full((*self.input_size(bundle), bundle.sampling.input_channels), 128, np.uint8)}


FAMILY = Pix2Pix()
