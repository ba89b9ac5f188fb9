"""Several labelled image domains in one dataset, for multi-domain translation (StarGAN): each image's
label is its domain.

- `digits-strokes`: scikit-learn's bundled digits upscaled to 16 x 16 (bicubic, as
  gen.trainkit.data.unpaired's domains) in three stroke widths: thin (eroded with a radius-1 disk),
  regular (untouched) and thick (dilated). Digit i goes to domain i mod 3, so every domain holds about
  600 different images of all ten digits and no image appears in two domains: no thick digit is the
  dilation of a thin one, as for CycleGAN's even/odd split. `domain_classes` labels the same images by
  domain x digit (30 classes), the metric classifier `gen eval` uses for Fréchet distances.
- a folder with one sub-folder per domain (at least two), e.g. photos/{summer,winter,autumn}.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from gen.errors import GenError

STROKES = "digits-strokes"
STROKE_DOMAINS = ("thin", "regular", "thick")


def load_domains(spec: str, image_size: int | None = None, channels: int | None = None):
    """The domains of `spec` as one Dataset whose labels and class names are the domains."""
    from gen.trainkit.data.images import _split, load_images

    if spec == STROKES:
        x, domain, _ = _strokes(image_size, channels)
        data = _split(STROKES, x, domain, list(STROKE_DOMAINS))
        size = data.image_size
        data.notes = [(f"{STROKES}: {len(data.train_x)} training and {len(data.test_x)} held-out {size}x{size} digits "
                       f"in {len(STROKE_DOMAINS)} domains ({', '.join(STROKE_DOMAINS)}; digit i in domain i mod 3, so no "
                       "image is in two)")]
        return data
    if not Path(spec).is_dir():
        raise GenError(f"--data must be {STROKES} or a folder with one sub-folder of images per domain; "
                       f"{spec!r} is neither")
    data = load_images(spec, image_size, channels)
    loose = bool((data.train_y < 0).any() or (data.test_y < 0).any())
    if data.num_classes < 2 or loose:
        raise GenError(f"--data {spec} needs one sub-folder of images per domain (at least two); found "
                       f"{data.num_classes} sub-folder(s)" + (" and images outside them" if loose else ""))
    data.notes.append(f"domains: {', '.join(data.class_names)}")
    return data


def domain_classes(spec: str, image_size: int, channels: int):
    """The same split as `load_domains`, labelled by domain x digit on `digits-strokes` (what a metric
    classifier's features should see: the stroke and the shape); None for folders (the domain alone)."""
    from gen.trainkit.data.images import _split

    if spec != STROKES:
        return None
    x, domain, digit = _strokes(image_size, channels)
    names = [f"{d}:{k}" for d in STROKE_DOMAINS for k in range(10)]
    return _split(f"{STROKES}-by-digit", x, domain * 10 + digit, names)


@functools.lru_cache(maxsize=2)
def _strokes(image_size: int | None, channels: int | None):
    """(images float32 NCHW in [-1, 1], domain per image, digit per image) of `digits-strokes`, made
    once per process (training, resuming and evaluating each load them; callers index, never write)."""
    from PIL import Image
    from skimage.morphology import dilation, disk, erosion

    from gen.trainkit.data.images import digit_images, to_array
    from gen.trainkit.data.unpaired import DIGIT_SIZE

    images, labels, _ = digit_images()
    shapes = (erosion, None, dilation)
    out = []
    for i, im in enumerate(images):
        up = np.asarray(im.resize((DIGIT_SIZE, DIGIT_SIZE), Image.Resampling.BICUBIC))
        shape = shapes[i % 3]
        out.append(Image.fromarray((shape(up, disk(1)) if shape else up).astype(np.uint8)))
    x = np.stack([to_array(im, image_size or DIGIT_SIZE, channels or 1) for im in out])
    index = np.arange(len(images))
    return x, (index % 3).astype(np.int64), np.asarray(labels, np.int64)
