"""Image arrays <-> pictures: uint8 conversion and PNG grids (numpy + Pillow only)."""

from __future__ import annotations

import io
import math
import os

import numpy as np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """NCHW floats in [-1, 1] -> NHWC uint8, rounding to nearest."""
    x = np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5, 0.0, 255.0)
    return np.round(x).astype(np.uint8).transpose(0, 2, 3, 1)


def grid(images: np.ndarray, nrow: int | None = None, pad: int = 1, scale: int | None = None):
    """Tile NCHW [-1, 1] images into one PIL image; tiny images are upscaled so people can see them."""
    from PIL import Image

    u8 = to_uint8(images)
    n, h, w, c = u8.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol = math.ceil(n / nrow)
    canvas = np.zeros((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y0 : y0 + h, x0 : x0 + w] = u8[i]
    pic = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    scale = scale or max(1, 512 // max(canvas.shape[:2]))
    if scale > 1:
        pic = pic.resize((pic.width * scale, pic.height * scale), Image.Resampling.NEAREST)
    return pic


GIF_FRAME_MS = 120  # an interpolation walk at about 8 frames a second

# what reading a folder of images picks up (training data, `gen generate --image DIR`)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}


def image_format(path: str | os.PathLike) -> str:
    """The file format a path's suffix names (a grid is written in it, not as PNG under any name)."""
    from gen.errors import GenError

    if os.path.isdir(path) or str(path).endswith(("/", os.sep)):
        raise GenError(f"--out {path} names a folder; give a file name such as {os.path.join(str(path), 'grid.png')}")
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in FORMATS:
        raise GenError(f"--out {path}: unknown image type {suffix or '(none)'!r}; use {', '.join(FORMATS)}")
    return FORMATS[suffix]


MARK = "gen"  # each picture gen saves says so, so a later command may replace it (and nothing else) unasked


def _marked(fmt: str) -> dict:
    """Pillow save options that mark a picture as gen's, in the place its format keeps such a note."""
    from PIL import Image, PngImagePlugin

    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", MARK)  # where matplotlib's savefig(metadata=...) puts it too
        return {"pnginfo": info}
    if fmt == "WEBP":
        exif = Image.Exif()
        exif[0x0131] = MARK  # Software
        return {"exif": exif.tobytes()}
    return {"comment": MARK.encode(), **({"quality": 95} if fmt == "JPEG" else {})}  # JPEG, GIF


def written_by_gen(path: str | os.PathLike) -> bool:
    """Whether the picture at `path` is one gen saved (its mark), so replacing it loses nothing of anyone's."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return MARK in (im.info.get("Software"), (im.info.get("comment") or b"").decode(errors="replace"),
                            im.getexif().get(0x0131))
    except Exception:  # not a picture Pillow reads: not ours
        return False


def save_image(path: str | os.PathLike, image: np.ndarray, option: str = "--out") -> None:
    """One CHW [-1, 1] image at its own size, in the format the suffix names."""
    from PIL import Image

    from gen.outputs import write_output

    fmt = image_format(path)
    u8 = to_uint8(image[None])[0]
    buf = io.BytesIO()
    Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8).save(buf, format=fmt, **_marked(fmt))
    write_output(path, buf.getvalue(), option)


def save_grid(path: str | os.PathLike, images: np.ndarray, nrow: int | None = None, option: str = "--out") -> None:
    """A grid of NCHW [-1, 1] images; to a .gif, an animation with one image per frame instead."""
    from gen.outputs import write_output

    fmt = image_format(path)
    buf = io.BytesIO()
    if fmt == "GIF":
        frames = [grid(im[None], nrow=1, pad=0) for im in images]
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=GIF_FRAME_MS, loop=0,
                       **_marked(fmt))
    else:
        grid(images, nrow=nrow).save(buf, format=fmt, **_marked(fmt))
    write_output(path, buf.getvalue(), option)
