"""Instance images for personalization (DreamBooth, textual inversion): a few photos of one subject.

A folder of images (no captions: the prompt names the subject), or `cat`, the built-in default:
five square crops across scikit-image's `chelsea` photo of a cat, so the commands run offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.trainkit.data import image_files, open_image, to_array

BUILTIN = ("cat",)
CROPS = 5


def load_instances(spec: str, size: int) -> np.ndarray:
    """(N, 3, size, size) float32 in [-1, 1]."""
    if spec == "cat":
        images = _cat_crops()
    else:
        root = Path(spec)
        if not root.is_dir():
            raise GenError(f"--data {spec}: folder not found (expected a folder of 3 to 20 photos of the subject, "
                           f"or one of the built-in sets: {', '.join(BUILTIN)})", "data")
        files = sorted(image_files(root))
        if not files:
            raise GenError(f"--data {spec} holds no images (.png, .jpg, .webp, ...): put 3 to 20 photos of the "
                           "subject in it", "data")
        images = [open_image(f) for f in files]
    return np.stack([to_array(im, size, 3) for im in images])


def _cat_crops():
    from PIL import Image
    from skimage import data

    photo = data.chelsea()  # 300 x 451 x 3
    side = min(photo.shape[:2])
    offsets = np.linspace(0, photo.shape[1] - side, CROPS).astype(int)
    return [Image.fromarray(photo[:, x:x + side]) for x in offsets]
