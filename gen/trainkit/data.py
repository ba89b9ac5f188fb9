"""Datasets as arrays: the bundled scikit-learn digits, or a folder of images.

Everything comes back as float32 NCHW in [-1, 1] with integer labels, split once (by a fixed seed)
into a training part and a held-out part that only evaluation looks at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen.errors import GenError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
HELD_OUT_FRACTION = 0.3
SPLIT_SEED = 1234


@dataclass
class Dataset:
    name: str
    train_x: np.ndarray  # (N, C, H, W) float32 in [-1, 1]
    train_y: np.ndarray  # (N,) int64; -1 where unlabelled
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """Content hash: caches keyed by it (the metric classifier) follow the data, not its name."""
        h = hashlib.sha256()
        for a in (self.train_x, self.train_y, self.test_x, self.test_y):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def load_dataset(spec: str, image_size: int | None = None, channels: int | None = None) -> Dataset:
    """`spec` is `digits` or a folder path; `image_size` resizes (default: the data's own size)."""
    if image_size is not None and image_size < 4:
        raise GenError(f"--image-size must be at least 4, got {image_size}")
    if channels not in (None, 1, 3):
        raise GenError(f"--channels must be 1 or 3, got {channels}")
    if spec == "digits":
        images, labels, names = digit_images()
        default_size = 8
    else:
        images, labels, names = _folder(Path(spec))
        default_size = 64
    size = image_size or default_size
    x = np.stack([to_array(im, size, channels or _channels_of(images)) for im in images])
    y = np.asarray(labels, dtype=np.int64)
    return _split(spec if spec == "digits" else Path(spec).name, x, y, names)


def digit_images():
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 ink intensities -> 8-bit grayscale, so the folder and digits paths share one resizer.
    images = [Image.fromarray(np.round(im * 255.0 / 16.0).astype(np.uint8), mode="L") for im in d.images]
    return images, d.target.tolist(), [str(i) for i in range(10)]


def _folder(root: Path):
    if not root.exists():
        raise GenError(f"--data folder not found: {root}")
    if not root.is_dir():
        raise GenError(f"--data must be 'digits' or a folder of images; {root} is not a folder")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subdirs:
        groups = [(d.name, sorted(image_files(d))) for d in subdirs]
        groups = [(n, files) for n, files in groups if files]
    else:
        groups = [("", sorted(image_files(root)))]
    if not any(files for _, files in groups):
        raise GenError(f"--data folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    labelled = bool(subdirs)
    names = [n for n, _ in groups] if labelled else []
    images, labels = [], []
    for label, (_, files) in enumerate(groups):
        for f in files:
            images.append(open_image(f))
            labels.append(label if labelled else -1)
    return images, labels, names


def open_image(f: Path):
    """The decoded image, or an error that names the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError) as e:
        raise GenError(f"cannot read image {f}: {e}") from None


def image_files(folder: Path):
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def _channels_of(images) -> int:
    return 1 if all(im.mode in ("1", "L", "LA", "I", "I;16", "F") for im in images) else 3


def to_array(im, size: int, channels: int) -> np.ndarray:
    """Resize the shorter side to `size`, center-crop to a square, map to [-1, 1] CHW."""
    from PIL import Image

    im = im.convert("L" if channels == 1 else "RGB")
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)
    left, top = (nw - size) // 2, (nh - size) // 2
    im = im.crop((left, top, left + size, top + size))
    a = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _split(name: str, x: np.ndarray, y: np.ndarray, class_names: list[str]) -> Dataset:
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(len(x))
    n_test = int(round(len(x) * HELD_OUT_FRACTION)) if len(x) >= 4 else 0
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, x[train], y[train], x[test], y[test], class_names)
