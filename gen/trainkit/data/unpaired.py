"""Unpaired image-to-image data: two domains, A and B, with no image matched to another, for CycleGAN.

A domain is an embedded default or a folder:

- `digits-thin` and `digits-thick`: scikit-learn's bundled digits upscaled to 16 x 16 (bicubic), then
  eroded or dilated with a radius-1 disk (scikit-image's grey morphology). Thin strokes come from the
  even-numbered digits and thick from the odd-numbered ones, so no thick image is the dilation of any
  thin one: the pairing CycleGAN must not see does not exist. Each keeps its digit labels, which gen's
  metric classifier uses (it learns digit x domain, so its features see both shape and stroke).
- `digits`: the same upscaled digits, untouched (odd-numbered, beside either of the above).
- a folder of images (class sub-folders allowed, as for `gen train gan`).

Both domains are loaded at one image size and one channel count (colour if either is colour) so
the two generators are mirror images of each other and a bundle's output shape does not depend on
the direction. The returned Dataset is domain A; `domain_b` holds domain B, split the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gen.errors import GenError

DIGIT_DOMAINS = ("digits-thin", "digits-thick", "digits")
DIGIT_SIZE = 16


def load_unpaired(spec_a: str, spec_b: str, image_size: int | None = None):
    from gen.trainkit.data.images import _folder, _split, own_size, to_array

    if spec_a == spec_b:
        raise GenError(f"--data-a and --data-b are both {spec_a!r}: CycleGAN translates between two different domains")
    sources, notes = [], []
    for spec, other, option in ((spec_a, spec_b, "--data-a"), (spec_b, spec_a, "--data-b")):
        if spec in DIGIT_DOMAINS:
            sources.append(_digits(spec, other))
        else:
            root = Path(spec)
            if (root / "A").is_dir() and (root / "B").is_dir():
                raise GenError(f"{option} {spec} holds A/ and B/ sub-folders: that is paired data for gen train pix2pix; "
                               "for CycleGAN give each domain's folder, e.g. --data-a DIR/A --data-b DIR/B")
            if not root.is_dir():
                raise GenError(f"{option} must be {', '.join(DIGIT_DOMAINS)} or a folder of images; {spec!r} is neither")
            sources.append(_folder(root))
    size = image_size
    if size is None:
        if any(isinstance(s, np.ndarray) for s in (sources[0][0], sources[1][0])):
            size = DIGIT_SIZE
        else:
            size, note = own_size([*sources[0][0], *sources[1][0]])
            notes.append(note)
    channels = max(_channels(s[0]) for s in sources)
    domains = []
    for spec, (images, labels, names) in zip((spec_a, spec_b), sources):
        if isinstance(images, np.ndarray):  # embedded digits: uint8 [N, 16, 16]
            from PIL import Image

            images = [Image.fromarray(im) for im in images]
        x = np.stack([to_array(im, size, channels) for im in images])
        domains.append(_split(spec if spec in DIGIT_DOMAINS else Path(spec).name, x, np.asarray(labels, np.int64), names))
    a, b = domains
    a.domain_b = b
    a.notes = notes + [f"unpaired: {len(a.train_x)} training images in A ({spec_a}), {len(b.train_x)} in B ({spec_b}), "
                       f"{size}x{size}, {channels} channel(s); {len(a.test_x)} and {len(b.test_x)} held out"]
    return a


def _channels(images) -> int:
    from gen.trainkit.data.images import _channels_of

    return 1 if isinstance(images, np.ndarray) else _channels_of(images)


def _digits(kind: str, other: str):
    """uint8 [N, 16, 16] digit images of one stroke width, their labels and class names. Thin takes
    the even-numbered digits and thick the odd; plain digits take whichever half the other domain
    leaves (the odd half beside thin, the even half beside thick)."""
    from PIL import Image
    from skimage.morphology import dilation, disk, erosion

    from gen.trainkit.data.images import digit_images

    images, labels, names = digit_images()
    half = {"digits-thin": 0, "digits-thick": 1}.get(kind, 1 if other == "digits-thin" else 0)
    picked = range(half, len(images), 2)
    up = [np.asarray(images[i].resize((DIGIT_SIZE, DIGIT_SIZE), Image.Resampling.BICUBIC)) for i in picked]
    shape = {"digits-thin": erosion, "digits-thick": dilation}.get(kind)
    out = np.stack([shape(im, disk(1)) if shape else im for im in up]).astype(np.uint8)
    return out, [labels[i] for i in picked], names
