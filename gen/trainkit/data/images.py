"""Datasets as arrays: the bundled scikit-learn digits and faces, crops of scikit-image's photos, or a
folder of images.

Everything comes back as float32 NCHW in [-1, 1] with integer labels, split once (by a fixed seed)
into a training part and a held-out part that only evaluation looks at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen.errors import GenError

from gen.images import IMAGE_SUFFIXES  # one list of image suffixes, shared with the CLI
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
    notes: list[str] = field(default_factory=list)  # choices made for the user (e.g. the image size), to print
    # paired data (gen.trainkit.data.paired): each image holds the input's channels, then the target's
    input_channels: int = 0
    # unpaired data (gen.trainkit.data.unpaired): this dataset is domain A, domain_b the other
    domain_b: "Dataset | None" = None

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


def load_images(spec: str, image_size: int | None = None, channels: int | None = None) -> Dataset:
    """`spec` is `digits`, `faces` or a folder path (sub-folders are class labels); `image_size`
    resizes (default: the data's own size)."""
    if image_size is not None and image_size < 4:
        raise GenError(f"--image-size must be at least 4, got {image_size}")
    if channels not in (None, 1, 3):
        raise GenError(f"--channels must be 1 or 3, got {channels}")
    notes = []
    if spec == "digits":
        images, labels, names = digit_images()
        size = image_size or 8
    elif spec == "photos":
        return photo_dataset(image_size, channels)
    elif spec == "faces":
        images, labels, names = face_images()
        size = image_size or FACES_SIZE
        notes.append(f"faces: scikit-image's lfw_subset, {len(images)} 25x25 gray faces at {size}x{size} (unlabelled: "
                     "gen eval needs --inception for them)")
    else:
        images, labels, names = _folder(Path(spec))
        size = image_size
        if size is None:
            size, note = own_size(images)
            notes.append(note)
    channels = channels or _channels_of(images)  # once: per image it made loading quadratic (1.5 s on digits)
    x = np.stack([to_array(im, size, channels) for im in images])
    y = np.asarray(labels, dtype=np.int64)
    data = _split(spec if spec in ("digits", "faces") else Path(spec).name, x, y, names)
    data.notes = notes
    return data


MAX_DEFAULT_SIZE = 64  # bigger folders train at 64 unless --image-size says otherwise (a 128px DCGAN step is ~4x slower)


def own_size(images) -> tuple[int, str]:
    """The data's own size as the nets take it: the largest power of two (>= 8) not above the
    smallest image side, so no image is upscaled; capped at MAX_DEFAULT_SIZE."""
    side = min(min(im.size) for im in images)
    size = max(8, min(MAX_DEFAULT_SIZE, 2 ** max(3, int(np.floor(np.log2(max(side, 1)))))))
    uniform = len({im.size for im in images}) == 1
    why = (f"the images are {images[0].size[0]}x{images[0].size[1]}" if uniform else
           f"the smallest image side is {side} px")
    if size == side and uniform:
        return size, f"image size {size} (the images' own)"
    reason = ("the nets take powers of two" if size < MAX_DEFAULT_SIZE or side < MAX_DEFAULT_SIZE
              else f"the default cap is {MAX_DEFAULT_SIZE}")
    return size, f"image size {size}: {why} and {reason}; choose another with --image-size"


FACES_SIZE = 16  # lfw_subset's faces are 25 x 25: the largest power of two below, so none is upscaled


def face_images():
    """The 100 faces of scikit-image's lfw_subset (its other 100 images are not faces), as 8-bit gray."""
    from PIL import Image
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]
    return [Image.fromarray(np.round(np.clip(f, 0, 1) * 255).astype(np.uint8), mode="L") for f in faces], [-1] * len(faces), []


def digit_images():
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 ink intensities -> 8-bit grayscale, so the folder and digits paths share one resizer.
    images = [Image.fromarray(np.round(im * 255.0 / 16.0).astype(np.uint8), mode="L") for im in d.images]
    return images, d.target.tolist(), [str(i) for i in range(10)]


def photo_dataset(image_size: int | None = None, channels: int | None = None) -> Dataset:
    """`photos`: the 32 x 32 colour crops of scikit-image's photos that the paired defaults are cut from
    (gen.trainkit.data.paired.photo_crops), labelled by photo; the held-out crops are the right-most 30%
    of each photo, not a random draw, since neighbouring crops overlap."""
    from PIL import Image

    from gen.trainkit.data.photos import CROP, PHOTOS, photo_crops

    size, channels = image_size or CROP, channels or 3
    (train, train_y), (test, test_y) = photo_crops()
    x_train, x_test = (np.stack([to_array(Image.fromarray(c), size, channels) for c in crops]) for crops in (train, test))
    data = Dataset("photos", x_train, train_y, x_test, test_y, list(PHOTOS))
    data.notes = [f"photos: {len(x_train)} training and {len(x_test)} held-out {size}x{size} crops of scikit-image's photos"]
    return data


BUILT_IN = ("digits", "faces", "photos")  # datasets gen ships or loads offline, by name


def _folder(root: Path):
    if not root.exists():
        import difflib

        close = difflib.get_close_matches(str(root), BUILT_IN, n=1)
        hint = f"; did you mean the built-in {close[0]!r}?" if close else f" (built-in datasets: {', '.join(BUILT_IN)})"
        raise GenError(f"--data folder not found: {root}{hint}")
    if not root.is_dir():
        raise GenError(f"--data must be {' or '.join(BUILT_IN)} or a folder of images; {root} is not a folder")
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

    from gen.runtime.image_input import FILE_FORMATS

    try:  # only the named decoders (never EPS, which would run Ghostscript), as everywhere gen reads images
        with Image.open(f, formats=list(FILE_FORMATS)) as im:  # Pillow refuses decompression bombs before decoding
            im.load()
            return _to_8bit(im.copy())
    except Image.DecompressionBombError as e:
        raise GenError(f"image {f} is too large to read safely: {e}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise GenError(f"cannot read image {f}: {e}") from None


def _to_8bit(im):
    """16-bit and float grayscale scaled to 8 bits by their type's range (Pillow's own convert
    clips them: a 16-bit photo would come out nearly white)."""
    from PIL import Image

    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(np.round(a / peak * 255), 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ValueError("a floating-point image must hold finite values in [0, 1]")
        return Image.fromarray(np.round(a * 255).astype(np.uint8), "L")
    return im


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
