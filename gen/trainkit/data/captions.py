"""Captioned images for text-to-image fine-tuning.

A folder of images whose captions come from `metadata.jsonl` (the Hugging Face imagefolder
convention: one {"file_name": ..., "text": ...} per line; "caption" is accepted too) or from a
`.txt` file beside each image. `digits` gives the bundled digits captioned "a handwritten digit N",
so the LoRA demo runs offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.trainkit.data import digit_images, image_files, open_image, to_array

CAPTION_KEYS = ("text", "caption")


def load_captioned(spec: str, size: int, limit: int | None = None) -> tuple[np.ndarray, list[str]]:
    """(N, 3, size, size) float32 in [-1, 1] and one caption per image."""
    if spec == "digits":
        images, labels, _ = digit_images()
        captions = [f"a handwritten digit {k}" for k in labels]
        if limit:
            images, captions = images[:limit], captions[:limit]
    else:
        images, captions = _folder(Path(spec), limit)
    return np.stack([to_array(im, size, 3) for im in images]), captions


def _folder(root: Path, limit: int | None):
    if not root.is_dir():
        raise GenError(f"--data {root}: folder not found (expected images with metadata.jsonl or .txt captions, or 'digits')")
    files = sorted(image_files(root))
    if not files:
        raise GenError(f"--data folder {root} holds no images")
    table = _metadata(root / "metadata.jsonl")
    images, captions = [], []
    for f in files[:limit] if limit else files:
        caption = table.get(f.name)
        if caption is None and f.with_suffix(".txt").is_file():
            caption = f.with_suffix(".txt").read_text(encoding="utf-8").strip()
        if not caption:
            raise GenError(f"{f} has no caption: add a line {{\"file_name\": \"{f.name}\", \"text\": \"...\"}} to "
                           f"{root / 'metadata.jsonl'} or write {f.with_suffix('.txt').name} beside it")
        images.append(open_image(f))
        captions.append(caption)
    return images, captions


def _metadata(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    table = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            name = row["file_name"]
            text = next(row[k] for k in CAPTION_KEYS if k in row)
        except (json.JSONDecodeError, KeyError, StopIteration, TypeError):
            raise GenError(f"{path}:{n}: expected {{\"file_name\": ..., \"text\": ...}}, got {line[:80]!r}") from None
        table[Path(name).name] = str(text)
    return table
