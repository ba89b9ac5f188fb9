"""Training data: plain or labelled images (images.py: the bundled digits and faces, or a folder),
(input, target) pairs (paired.py), two unpaired domains (unpaired.py), and the Stable Diffusion
trainers' captioned images and instance photos (captions.py, instances.py). `load_dataset` picks by
what the family's config declares it trains on (gen.trainkit.config: IMAGES, PAIRED, UNPAIRED)."""

from __future__ import annotations

from gen.trainkit.data.images import Dataset, digit_images, image_files, load_images, open_image, own_size, to_array

__all__ = ["Dataset", "digit_images", "image_files", "load_dataset", "open_image", "own_size", "to_array"]


def load_dataset(spec: str, image_size: int | None = None, channels: int | None = None, paired: bool = False,
                 direction: str | None = None, side_by_side: bool = False, data_b: str | None = None) -> Dataset:
    """`spec` is `digits` or a folder path; `image_size` resizes (default: the data's own size).
    `paired` (families that translate images) reads paired data instead (gen.trainkit.data.paired: an
    embedded default, a folder with A/ and B/, or side-by-side images); `direction` says which side
    is the input. `data_b` makes `spec` domain A of unpaired data (gen.trainkit.data.unpaired)."""
    if data_b is not None:
        from gen.trainkit.data.unpaired import load_unpaired

        return load_unpaired(spec, data_b, image_size)
    if paired:
        from gen.trainkit.data.paired import load_paired

        return load_paired(spec, image_size, direction, side_by_side)
    return load_images(spec, image_size, channels)
