"""Paired image-to-image data: input A and target B of the same scene, for pix2pix.

A paired dataset is a `Dataset` whose images hold the input's channels followed by the target's
(`input_channels` says where they split), so the training loop draws matched pairs with the same
index like any other batch. Sources:

- embedded defaults that ship offline (labelled by source photo, for gen eval's FD), cut from scikit-image's bundled photos (astronaut, coffee,
  chelsea, rocket, motorcycle's left view, hubble deep field, immunohistochemistry), each downscaled 4x and
  cut into 32 x 32 crops; the held-out crops come from the right-most 30% of every photo, so no
  held-out pixel was seen in training:
    colorize  gray (luma) crop -> the colour crop
    sr4x      the crop shrunk 4x and blown up again with bicubic -> the crop (4x super-resolution)
    edges     Sobel edges of the crop (gray) -> the colour crop
- a folder with `A/` and `B/` sub-folders whose files pair by name;
- a folder of side-by-side images (A left, B right, as the pix2pix datasets ship), with
  `direction` "AtoB" (default) or "BtoA" saying which half is the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.trainkit.data.photos import CROP, HELD_OUT_FRACTION, PHOTOS, photo_crops

DEFAULTS = ("colorize", "sr4x", "edges")
DIRECTIONS = ("AtoB", "BtoA")


def load_paired(spec: str, image_size: int | None = None, direction: str | None = None, side_by_side: bool = False):
    from gen.trainkit.data.images import Dataset

    direction = direction or "AtoB"
    if direction not in DIRECTIONS:
        raise GenError(f"--direction must be AtoB or BtoA, got {direction!r}")
    root = Path(spec)
    if spec not in DEFAULTS and not side_by_side and not ((root / "A").is_dir() and (root / "B").is_dir()):
        raise GenError(f"pix2pix trains on paired data: --data {', '.join(DEFAULTS)}, a folder with A/ and B/ "
                       f"sub-folders paired by file name, or side-by-side pairs with --side-by-side; {spec!r} is none "
                       "of these")
    if spec in DEFAULTS:
        (a_train, b_train, y_train), (a_test, b_test, y_test) = _embedded(spec)
        notes = [f"{spec}: {len(a_train)} training and {len(a_test)} held-out {CROP}x{CROP} crops of "
                 f"scikit-image's photos ({_DESCRIBE[spec]})"]
        name, class_names = spec, list(PHOTOS)
    else:
        a, b = _side_by_side(Path(spec)) if side_by_side else _folders(Path(spec))
        if direction == "BtoA":
            a, b = b, a
        a, b = _resize(a, image_size), _resize(b, image_size)
        order = np.random.default_rng(1234).permutation(len(a))
        n_test = int(round(len(a) * HELD_OUT_FRACTION)) if len(a) >= 4 else 0
        test, train = order[:n_test], order[n_test:]
        (a_train, b_train), (a_test, b_test) = (a[train], b[train]), (a[test], b[test])
        y_train, y_test = np.full(len(a_train), -1, np.int64), np.full(len(a_test), -1, np.int64)
        notes, name, class_names = [], Path(spec).name, []
    if image_size is not None and a_train.shape[-1] != image_size:
        a_train, b_train, a_test, b_test = (_resize(x, image_size) for x in (a_train, b_train, a_test, b_test))
    data = Dataset(name, np.concatenate([a_train, b_train], 1), y_train, np.concatenate([a_test, b_test], 1), y_test,
                   class_names)
    data.input_channels = int(a_train.shape[1])
    data.notes = notes
    return data


_DESCRIBE = {"colorize": "gray input, colour target", "sr4x": "bicubic 4x-upscaled input, sharp target",
             "edges": "Sobel edges input, colour target"}


def _embedded(kind: str):
    out = []
    for crops, labels in photo_crops():
        inputs = np.stack([_input(kind, crop) for crop in crops])
        out.append((inputs, crops.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1, labels))
    return tuple(out)


def _input(kind: str, crop: np.ndarray) -> np.ndarray:
    from PIL import Image

    pic = Image.fromarray(crop)
    if kind == "colorize":
        return np.asarray(pic.convert("L"), dtype=np.float32)[None] / 127.5 - 1
    if kind == "sr4x":
        small = pic.resize((CROP // 4, CROP // 4), Image.Resampling.BICUBIC)
        return np.asarray(small.resize((CROP, CROP), Image.Resampling.BICUBIC), dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1
    from skimage.filters import sobel

    edges = sobel(np.asarray(pic.convert("L"), dtype=np.float32) / 255.0)
    return (np.clip(edges / max(float(edges.max()), 1e-6), 0, 1) * 2 - 1).astype(np.float32)[None]


def _folders(root: Path):
    from gen.trainkit.data.images import image_files, open_image

    a_files = {p.name: p for p in image_files(root / "A")}
    b_files = {p.name: p for p in image_files(root / "B")}
    if not a_files or not b_files:
        raise GenError(f"--data {root}: A/ and B/ must both hold images")
    only_a, only_b = sorted(set(a_files) - set(b_files)), sorted(set(b_files) - set(a_files))
    if only_a or only_b:
        raise GenError(f"--data {root}: A/ and B/ pair images by file name, but {len(only_a) + len(only_b)} do not match "
                       f"(e.g. {(only_a or only_b)[0]!r} is only in {'A' if only_a else 'B'}/); for unpaired domains "
                       "use gen train cyclegan")
    names = sorted(a_files)
    return [open_image(a_files[n]) for n in names], [open_image(b_files[n]) for n in names]


def _side_by_side(root: Path):
    from gen.trainkit.data.images import image_files, open_image

    files = sorted(image_files(root)) if root.is_dir() else []
    if not files:
        raise GenError(f"--data {root}: no side-by-side images found")
    a, b = [], []
    for f in files:
        im = open_image(f)
        if im.width != 2 * im.height:
            raise GenError(f"{f}: a side-by-side pair is twice as wide as high (A left, B right); this one is "
                           f"{im.width}x{im.height}")
        a.append(im.crop((0, 0, im.height, im.height)))
        b.append(im.crop((im.height, 0, im.width, im.height)))
    return a, b


def _resize(images, size: int | None):
    """PIL images or float NCHW arrays -> float NCHW at `size` (the images' own size by default)."""
    from gen.trainkit.data.images import to_array

    if isinstance(images, np.ndarray):
        if size is None or images.shape[-1] == size:
            return images
        from PIL import Image

        out = []
        for x in images:
            u8 = np.round((x.transpose(1, 2, 0) + 1) * 127.5).clip(0, 255).astype(np.uint8)
            pic = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8).resize((size, size), Image.Resampling.BICUBIC)
            a = np.asarray(pic, dtype=np.float32) / 127.5 - 1
            out.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        return np.stack(out)
    size = size or min(min(im.size) for im in images)
    if size < 8 or size & (size - 1):
        size = 2 ** int(np.floor(np.log2(max(size, 8))))
    channels = 1 if all(im.mode in ("1", "L", "LA") for im in images) else 3
    return np.stack([to_array(im, size, channels) for im in images])
