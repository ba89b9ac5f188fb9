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
from gen.outputs import refuse_sources

BATCH = 16


def translate_folder(sampler, folder: str, out: str, seed: int = 0, reconstruct: bool = False, out_given: bool = True,
                     force: bool = False, sources=(), **arguments) -> None:
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
    refuse_sources(out_dir, (*sources, folder))
    stems = {}
    for f in files:
        stems.setdefault(f.stem, []).append(f.name)
    clashes = [names for names in stems.values() if len(names) > 1]
    if clashes:  # x.png and x.jpg would both be written as x.png, the second over the first
        raise GenError(f"--image {folder}: {' and '.join(clashes[0])} would both be written as {out}/{Path(clashes[0][0]).stem}.png"
                       f"{f' ({len(clashes)} such groups)' if len(clashes) > 1 else ''}; rename or move one of them")
    existing = [f"{f.stem}.png" for f in files if (out_dir / f"{f.stem}.png").exists()]
    if existing and not force:  # said before anything is written, not counted afterwards
        raise GenError(f"--out {out} already holds {', '.join(existing[:3])}{' ...' if len(existing) > 3 else ''} "
                       f"({len(existing)} of the {len(files)} names the translations get); pass --force to replace "
                       "them, or choose another --out")
    prompt = arguments.pop("prompt", None)
    batch = BATCH if prompt is None else 1  # text-to-image img2img: one image per prompt and call
    t0, replaced, sizes_seen = time.perf_counter(), 0, set()
    with typer.progressbar(length=len(files), label="reconstructing" if reconstruct else "translating") as bar:
        for i in range(0, len(files), batch):
            chunk = files[i:i + batch]
            try:
                images = [as_uint8_nhwc(str(f), f"image {f.name}") for f in chunk]
                sizes = {im.shape[1:] for im in images}
                sizes_seen |= {s[:2] for s in sizes}
                batches = [np.concatenate(images)] if len(sizes) == 1 else images  # mixed sizes go one by one
            except GenError as e:
                raise GenError(f"{e}; {i} image(s) were written to {out}") from None
            outputs, done = [], 0
            for b in batches:
                try:
                    outputs.append(sampler.reconstruct(b) if reconstruct else
                                   sampler.generate(prompt, image=b, seed=seed, n=len(b), **arguments))
                except GenError as e:  # e.g. a non-square image: which file, and what was kept
                    names = [f.name for f in chunk[done:done + len(b)]]
                    which = names[0] if len(names) == 1 else f"{names[0]} (and {len(names) - 1} more of its size)"
                    raise GenError(f"{which}: {e}; {i + done} image(s) were written to {out}", e.argument) from None
                done += len(b)
            out_dir.mkdir(parents=True, exist_ok=True)  # only once there is something to write
            for f, im in zip(chunk, np.concatenate(outputs)):
                target = out_dir / f"{f.stem}.png"
                replaced += target.exists()
                save_image(target, im)
            bar.update(len(chunk))
    from gen.cli.options import fixed_size, resize_note

    note = (f" ({replaced} replaced)" if replaced else "") + resize_note(sizes_seen, fixed_size(sampler, reconstruct))
    typer.echo(f"{len(files)} image{'s' * (len(files) != 1)} in {time.perf_counter() - t0:.2f} s -> {out_dir}/{note}")

