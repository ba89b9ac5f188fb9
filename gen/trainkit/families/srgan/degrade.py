"""The low-resolution input of super-resolution: the sharp image shrunk by Pillow's bicubic, exactly as
the sr4x pairs' inputs were made (gen.trainkit.data.paired) and as a user's small photo usually was.

Done on the host in uint8, not in torch: torch's antialiased bicubic differs from Pillow's by up to 3
levels on 10% of the pixels, and the model should train on the inputs it is scored and used on.
"""

from __future__ import annotations

import numpy as np


def shrink(images: np.ndarray, scale: int) -> np.ndarray:
    """float NCHW images in [-1, 1] -> float NCHW, `scale` times smaller, through uint8 (as served)."""
    from PIL import Image

    u8 = np.round((np.asarray(images, np.float32) + 1) * 127.5).clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    h, w = u8.shape[1] // scale, u8.shape[2] // scale
    out = []
    for im in u8:
        pic = Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).resize((w, h), Image.Resampling.BICUBIC)
        a = np.asarray(pic, dtype=np.float32)
        out.append(a[..., None] if a.ndim == 2 else a)
    return np.stack(out).transpose(0, 3, 1, 2) / np.float32(127.5) - 1
