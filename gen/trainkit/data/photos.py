"""Crops of scikit-image's bundled photos (astronaut, coffee, chelsea, rocket, hubble deep field,
immunohistochemistry, retina), which ship offline: the paired defaults (gen.trainkit.data.paired:
colorize, sr4x, edges) and the `photos` dataset (gen.trainkit.data.images) are cut from them."""

from __future__ import annotations

import numpy as np

CROP, STRIDE, DOWNSCALE = 32, 16, 4
HELD_OUT_FRACTION = 0.3
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")


def photo_crops():
    """((train crops, labels), (held-out crops, labels)): uint8 CROP x CROP x 3 crops of the PHOTOS,
    each downscaled DOWNSCALE x, labelled by photo; held-out crops come from the right-most
    HELD_OUT_FRACTION of each photo, so no held-out pixel is in a training crop."""
    from PIL import Image
    from skimage import data as photos

    train, test = ([], []), ([], [])
    for label, name in enumerate(PHOTOS):
        rgb = getattr(photos, name)()
        if rgb.ndim == 2:
            rgb = np.stack([rgb] * 3, -1)
        pic = Image.fromarray(rgb[..., :3].astype(np.uint8))
        pic = pic.resize((pic.width // DOWNSCALE, pic.height // DOWNSCALE), Image.Resampling.LANCZOS)
        a = np.asarray(pic, dtype=np.uint8)
        split = int(a.shape[1] * (1 - HELD_OUT_FRACTION))
        for part, (x0, x1) in ((train, (0, split)), (test, (split, a.shape[1]))):
            for y in range(0, a.shape[0] - CROP + 1, STRIDE):
                for x in range(x0, x1 - CROP + 1, STRIDE):
                    part[0].append(a[y:y + CROP, x:x + CROP])
                    part[1].append(label)  # which photo: the labels of gen eval's feature classifier
    return tuple((np.stack(p[0]), np.asarray(p[1], np.int64)) for p in (train, test))
