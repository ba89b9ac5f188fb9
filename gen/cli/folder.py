"""`gen generate BUNDLE --image DIR --out DIR`: every image of a folder through an image-to-image model.

Inputs go in batches (each file read and checked like any `image=`), outputs are written under the
input's name as PNG, each atomically; a file that cannot be read stops the run naming it, with what
was already written kept. A progress bar shows how far it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from gen.errors import GenError

BATCH = 16


def translate_folder(sampler, folder: str, out: str, seed: int = 0, reconstruct: bool = False, out_given: bool = True,
                     **arguments) -> None:
    """Every image in `folder` through `sampler` (generate(image=...), or reconstruct() for autoencoders)."""
    import time

    from gen.images import IMAGE_SUFFIXES, save_image
    from gen.runtime.image_input import as_uint8_nhwc

    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise GenError(f"--image {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    out_dir = Path(out)
    if not out_given:  # the default --out is a grid's file name
        raise GenError("with --image FOLDER, give --out FOLDER: the folder to write the translated images into")
    if out_dir.exists() and not out_dir.is_dir():
        raise GenError(f"--out {out} is a file; with --image FOLDER, --out names a folder to write into")
    if not out_dir.exists() and out_dir.suffix.lower() in IMAGE_SUFFIXES:  # a typo'd file name, not a folder name
        raise GenError(f"--out {out} looks like an image file; with --image FOLDER, --out names a folder to write "
                       f"into (e.g. --out {out_dir.with_suffix('')})")
    if out_dir.resolve() == Path(folder).resolve():
        raise GenError("--out must not be the --image folder: the inputs would be overwritten")
    out_dir.mkdir(parents=True, exist_ok=True)
    prompt = arguments.pop("prompt", None)
    batch = BATCH if prompt is None else 1  # text-to-image img2img: one image per prompt and call
    t0, replaced = time.perf_counter(), 0
    with typer.progressbar(length=len(files), label="translating") as bar:
        for i in range(0, len(files), batch):
            chunk = files[i:i + batch]
            try:
                images = [as_uint8_nhwc(str(f), f"image {f.name}") for f in chunk]
                sizes = {im.shape[1:] for im in images}
                batches = [np.concatenate(images)] if len(sizes) == 1 else images  # mixed sizes go one by one
            except GenError as e:
                raise GenError(f"{e}; {i} image(s) were written to {out}") from None
            outputs = np.concatenate([sampler.reconstruct(b) if reconstruct else
                                      sampler.generate(prompt, image=b, seed=seed, n=len(b), **arguments) for b in batches])
            for f, im in zip(chunk, outputs):
                target = out_dir / f"{f.stem}.png"
                replaced += target.exists()
                save_image(target, im)
            bar.update(len(chunk))
    note = f" ({replaced} replaced)" if replaced else ""
    typer.echo(f"{len(files)} image{'s' * (len(files) != 1)} in {time.perf_counter() - t0:.2f} s -> {out_dir}/{note}")

