"""Images given to `generate(image=..., mask=...)`: whatever a caller has, as one canonical form.

A path, a PIL image, a list of either, or an array (HW, HWC, CHW, NHWC or NCHW; uint8 0..255, or
float in gen's own [-1, 1] range) becomes uint8 NHWC. A 3-D array is one image (3 or 4 leading sizes:
CHW colour), never a stack: give several gray images as N x H x W x 1, or as a list. uint8 is what a
served request carries, so an image given in process and the same image sent to Triton reach the
model as the same numbers. Preparing them for a network (resizing to the requested size, scaling to
[-1, 1], a mask binarised at the latent resolution) is the family's job.
"""

from __future__ import annotations

import os

import numpy as np

from gen.errors import GenError

CHANNELS = (1, 2, 3, 4)
# Pillow's decoders, named: only these are ever run on an input. Pillow would otherwise try every
# format it knows, EPS included (which runs Ghostscript on the file).
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP")  # what the demo's API promises for an image a client sends
FILE_FORMATS = (*UPLOAD_FORMATS, "BMP", "GIF", "TIFF")  # a local file: gen.images.IMAGE_SUFFIXES' formats
# modes whose channels are no colour a model reads (L*a*b* has an "A" band that is no alpha): refused
# rather than reinterpreted or converted by a formula that ignores the file's colour profile
FOREIGN_MODES = {"LAB": "CIE L*a*b*", "HSV": "HSV", "CMYK": "CMYK (print)"}


def as_uint8_nhwc(value, name: str = "image") -> np.ndarray:
    """`value` as uint8 [N, H, W, C], or a GenError naming the argument and what was wrong."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise GenError(f"{name}: an empty list; give an image, a path, or a list of them")
        parts = [as_uint8_nhwc(v, name) for v in value]
        if len({p.shape[1:] for p in parts}) > 1:
            raise GenError(f"{name}: the images differ in size or channels ({', '.join(_size(p) for p in parts)}); "
                           "give images of one size")
        return np.concatenate(parts)
    if isinstance(value, (str, os.PathLike)):
        return from_pil(open_image(value, name, f"cannot read {value} as an image"), name)
    if _is_pil(value):
        return from_pil(value, name)
    if isinstance(value, np.ndarray):
        return _from_array(value, name)
    raise GenError(f"{name} must be a path, a PIL image or a numpy array (or a list of them), got "
                   f"{type(value).__name__}", name if name.isidentifier() else None)


def open_image(source, name: str, failure: str, formats=FILE_FORMATS, max_pixels: int | None = None):
    """A loaded PIL image from a path or a file object, decoded by `formats` only (the one place an
    input image is decoded: files, `gen generate --image`, the demo's uploads); anything else is a
    GenError naming the argument: `failure` says what could not be read, the message what to send."""
    from PIL import Image, UnidentifiedImageError

    kinds = ", ".join("WebP" if f == "WEBP" else f for f in formats)
    try:
        with Image.open(source, formats=list(formats)) as im:  # bombs (MAX_IMAGE_PIXELS) are refused before decoding
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise GenError(f"{name} is {im.width}x{im.height}; uploads are limited to {max_pixels} pixels", name)
            im.load()
            return im.copy()
    except FileNotFoundError:
        raise GenError(f"{name}: no such file: {source}", name) from None
    except UnidentifiedImageError:
        raise GenError(f"{name}: {failure} (not a {kinds} image); give one of those formats", name) from None
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        raise GenError(f"{name}: {failure} ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                       f"give a {kinds} image", name) from None


def _is_pil(value) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(value, Image.Image)


def from_pil(im, name: str) -> np.ndarray:
    if im.mode in FOREIGN_MODES:
        raise GenError(f"{name}: a {FOREIGN_MODES[im.mode]} image (mode {im.mode}); gen reads gray or RGB images, "
                       "with or without alpha: convert it to RGB (e.g. in an image editor) and give that", name)
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    a = np.asarray(im, dtype=np.uint8)
    return (a[..., None] if a.ndim == 2 else a)[None]


def _from_array(a: np.ndarray, name: str) -> np.ndarray:
    """HW, HWC, CHW (3 or 4 leading channels), NHWC or NCHW. A 3-D array whose first size is 2 is
    refused rather than guessed: two gray images and a gray+alpha CHW image look the same."""
    shape = list(a.shape)
    if a.ndim == 2:
        a = a[None, ..., None]
    elif a.ndim == 3:
        a = a[None] if a.shape[-1] in CHANNELS else a.transpose(1, 2, 0)[None] if a.shape[0] in (1, 3, 4) else a
    elif a.ndim == 4 and a.shape[-1] not in CHANNELS and a.shape[1] in CHANNELS:
        a = a.transpose(0, 2, 3, 1)
    if a.ndim != 4 or a.shape[-1] not in CHANNELS or 0 in a.shape:
        stack = (f"; for {shape[0]} gray images give shape {[shape[0], *shape[1:], 1]} or a list"
                 if len(shape) == 3 and shape[-1] not in CHANNELS else "")
        raise GenError(f"{name}: an array of shape {shape} is not an image; give HW, HWC, CHW, NHWC or NCHW with "
                       f"1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels{stack}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind != "f":
        raise GenError(f"{name}: dtype {a.dtype}; give uint8 (0..255) or floats in [-1, 1]")
    if not np.isfinite(a).all():
        raise GenError(f"{name}: holds NaN or infinite values")
    if a.min() < -1.0 or a.max() > 1.0:
        raise GenError(f"{name}: float values must be in [-1, 1] (gen's image range), got {a.min():.3g}..{a.max():.3g}")
    return np.round((a.astype(np.float32) + 1.0) * 127.5).astype(np.uint8)


def _size(a: np.ndarray) -> str:
    return f"{a.shape[2]}x{a.shape[1]}x{a.shape[3]}"


def resized(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 NHWC at (height, width), with Lanczos like diffusers' image processor; unchanged if it fits."""
    if images.shape[1:3] == (height, width):
        return images
    from PIL import Image

    out = []
    for im in images:
        pic = Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im)
        a = np.asarray(pic.resize((width, height), resample=Image.Resampling.LANCZOS), dtype=np.uint8)
        out.append(a[..., None] if a.ndim == 2 else a)
    return np.stack(out)


def grayscale(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC with one channel, by Pillow's own conversion (ITU-R 601-2 luma, as diffusers' masks)."""
    if images.shape[-1] == 1:
        return images
    from PIL import Image

    rgb = images[..., :3] if images.shape[-1] >= 3 else np.repeat(images[..., :1], 3, axis=-1)
    return np.stack([np.asarray(Image.fromarray(im).convert("L"), dtype=np.uint8)[..., None] for im in rgb])


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 NHWC images with `channels` channels, as Pillow's `convert` would make them (diffusers'
    image processor converts to RGB the same way): colour to gray by ITU-R 601-2 luma, gray to colour
    by copying it into each channel, an alpha channel dropped."""
    have = image.shape[-1]
    if have == channels:
        return image
    if channels == 1:
        return grayscale(image)
    if channels == 3:
        return np.ascontiguousarray(image[..., :3] if have >= 3 else np.repeat(image[..., :1], 3, axis=-1))
    raise GenError(f"image has {have} channel(s); this model reads {channels}")


def fit_to_model(image: np.ndarray, channels: int, size: tuple[int, int]) -> np.ndarray:
    """uint8 NHWC images fitted to a model that reads `channels` at `size` (height, width), by one
    rule: channels converted as Pillow would (`to_channels`), and an image of another size resized
    (Lanczos) when it is square like the model's, refused otherwise (cropping is the caller's choice)."""
    image = to_channels(image, channels)
    h, w = image.shape[1:3]
    if (h, w) != tuple(size):
        if h != w:
            raise GenError(f"image is {w}x{h}; this model takes {size[1]}x{size[0]} images: crop it to a square first")
        image = resized(image, *size)
    return image
