"""`gen generate BUNDLE`: images from a bundle on any backend, saved as a PNG grid."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gen.cli.options import BACKENDS_HELP


def _two_seeds(pair: Optional[tuple[str, str]]) -> Optional[tuple[int, int]]:
    """--interpolate A B as two integers; parsed here so that a missing seed (`--interpolate 1 --out w.gif`
    swallows `--out`) is named with what was read instead of Typer's bare "not a valid integer"."""
    if pair is None:
        return None
    try:
        return int(pair[0]), int(pair[1])
    except ValueError:
        from gen.errors import GenError
        raise GenError(f"--interpolate takes two seeds A B (whole numbers), got {pair[0]!r} {pair[1]!r}; "
                       "give both right after it, e.g. --interpolate 1 2") from None


def generate(
    ctx: typer.Context,
    bundle: Annotated[Optional[str], typer.Argument(help="Bundle directory written by `gen export` (or use --url).")] = None,
    url: Annotated[Optional[str], typer.Option(help="A gen model served by Triton: http://HOST:PORT or grpc://HOST:PORT (with --model).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Pipeline model name on the server (with --url).")] = None,
    backend: Annotated[str, typer.Option(help=f"{BACKENDS_HELP}.")] = "auto",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    precision: Annotated[Optional[str], typer.Option(help="fp32, fp16, or int8 / int8-trt when the bundle was exported with --int8 (ort on cpu); with --backend openvino also bf16 and int8-bf16 (CPUs with bf16 instructions) and int8-ov (--int8-openvino) (default: fp32 on cpu, where ORT runs fp16 through casts; the bundle's on cuda; no --backend: this host's plan).")] = None,
    prompt: Annotated[Optional[str], typer.Option(help="Text prompt (text-to-image bundles, e.g. from `gen export --model sd-lora`).")] = None,
    negative_prompt: Annotated[Optional[str], typer.Option(help="What to steer away from (text-to-image, with guidance > 1).")] = None,
    height: Annotated[Optional[int], typer.Option(help="Image height, a multiple of 8 (text-to-image; default: the model's).")] = None,
    width: Annotated[Optional[int], typer.Option(help="Image width, a multiple of 8 (text-to-image; default: the model's).")] = None,
    image: Annotated[Optional[str], typer.Option(help="Input image file for image-to-image bundles (pix2pix) and SD img2img; or a folder: every image in it is translated into the folder --out, with a progress bar.")] = None,
    mask: Annotated[Optional[str], typer.Option(help="With --image: inpainting mask file of the image's size; white is repainted, black kept.")] = None,
    strength: Annotated[Optional[float], typer.Option(help="With --image: how far to depart from it, in (0, 1]: the share of the schedule that runs (default 0.8; 1.0 with --mask).")] = None,
    direction: Annotated[Optional[str], typer.Option(help="With --image on a CycleGAN bundle: AtoB (default) or BtoA.")] = None,
    target_domain: Annotated[Optional[str], typer.Option(help="With --image on a multi-domain bundle: the domain to translate into, by name or index.")] = None,
    decoder: Annotated[Optional[str], typer.Option(help="Text-to-image: full (the VAE decoder, default) or tiny (the bundle's distilled tiny decoder, from `gen export BUNDLE --tiny-decoder RUN`: faster, approximate).")] = None,
    lora: Annotated[Optional[str], typer.Option(help="Text-to-image: a LoRA adapter of the bundle by name (a bundle exported with --lora-slots; `gen lora list BUNDLE` shows them).")] = None,
    lora_scale: Annotated[Optional[float], typer.Option(help="With --lora: the adapter's strength, in [-4, 4] (1 = as trained).")] = None,
    psi: Annotated[Optional[float], typer.Option(help="StyleGAN truncation in [0, 1]: 1 none, lower pulls towards the average image.")] = None,
    mix_seed: Annotated[Optional[int], typer.Option(help="StyleGAN style mixing: layers from --mix-layer on take this seed's styles.")] = None,
    mix_layer: Annotated[Optional[int], typer.Option(help="StyleGAN style mixing: first layer that reads --mix-seed (0 = all of them).")] = None,
    interpolate: Annotated[Optional[tuple[str, str]], typer.Option(callback=_two_seeds, help="StyleGAN latent walk: two seeds A B; --frames images from A's to B's (a strip, or an animation with --out walk.gif).")] = None,
    frames: Annotated[Optional[int], typer.Option(help="With --interpolate: images in the walk (default 16).")] = None,
    reconstruct: Annotated[bool, typer.Option("--reconstruct", help="With --image on an autoencoder bundle (ae, vae, vqvae): encode and decode it.")] = False,
    n: Annotated[Optional[int], typer.Option(help="Number of images (default 16; 4 for text-to-image).")] = None,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same images on every backend.")] = 0,
    steps: Annotated[Optional[int], typer.Option(help="Diffusion steps (default from the bundle).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="Diffusion scheduler: ddpm, ddim, dpm++, euler or lcm.")] = None,
    eta: Annotated[Optional[float], typer.Option(help="With --scheduler ddim: stochasticity, >= 0 (0, the default, is deterministic; 1 is DDPM-like).")] = None,
    label: Annotated[Optional[int], typer.Option(help="Class label for conditional models (default: cycle through classes).")] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale (class-conditional diffusion, or text-to-image: 7.5 by default).")] = None,
    classifier_scale: Annotated[Optional[float], typer.Option(help="Classifier guidance scale towards --label (DDPM bundles exported from `gen train noisy-classifier`; 0 = none).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for the backend (default: all cores, fewer while other jobs share them; a count given here is pinned, for bit-reproducible runs).")] = None,
    out: Annotated[str, typer.Option(help="Image grid to write: .png, .jpg, .webp, or .gif (an animation, one image per frame) (one translated --image: that one image, not a grid, at the model's size; --image FOLDER: a folder). A picture gen wrote there is replaced; anything else needs --force.")] = "grid.png",
    force: Annotated[bool, typer.Option(help="Let --out replace files gen did not write (with --image FOLDER: any same-name file in --out).")] = False,
) -> None:
    """Generate images and save them: a grid (PNG, JPEG, WebP; a GIF animates a StyleGAN walk), one
    translated or reconstructed --image, or a folder of them for --image FOLDER.

    Examples:  gen generate bundles/ddpm --backend ort --n 16 --seed 0 --steps 20 --scheduler ddim --out grid.png
               gen generate bundles/sd-lora --prompt "a red house" --negative-prompt blurry --steps 20 --n 4
               gen generate bundles/sd-lora --prompt "a red house" --image in.png --strength 0.6      (img2img)
               gen generate bundles/sd-lora --prompt "a red door" --image in.png --mask mask.png      (inpainting)
               gen generate --url http://127.0.0.1:8000 --model ddpm --n 16 --out grid.png
               gen generate bundles/colorize --image gray.png --out colour.png                        (pix2pix)
               gen generate bundles/colorize --image photos/ --out coloured/                          (a folder)
               gen generate bundles/cyclegan --image thick.png --direction BtoA --out thin.png          (CycleGAN)
               gen generate bundles/ae --reconstruct --image digit.png --out recon.png                 (autoencoders)
               gen generate bundles/stylegan --psi 0.7 --mix-seed 5 --mix-layer 2 --out mixed.png      (StyleGAN)
               gen generate bundles/stylegan --interpolate 1 2 --frames 16 --out walk.gif
               gen generate bundles/ddpm-guided --label 3 --classifier-scale 2 --out threes.png  (classifier guidance)
    """
    import os

    from gen.cli.options import given_options, library_errors_as_flags, require_bundle_or_url
    from gen.runtime.sampler import Sampler

    require_bundle_or_url(bundle, url, model, given_options(ctx, ("backend", "device", "precision", "threads")), given_options(ctx, ("model",)))
    folder = image is not None and os.path.isdir(image)
    _refuse_what_does_not_apply(ctx, frames, interpolate, n, reconstruct, image, folder)
    if not folder:  # a bad --out fails before the images are made
        _check_out(out, force, sources=(bundle, image, mask))
    flags = {"labels": "--label", "n": "--frames" if interpolate is not None else "--n"}
    with library_errors_as_flags(flags):  # the library names its arguments; here the user typed flags
        sampler = Sampler(url, backend="triton", model=model) if url else \
            Sampler(bundle, backend=backend, device=device, precision=precision, threads=threads)
        with sampler:  # closed when done: a served model's client holds a keep-alive connection a stopping Triton waits for
            shared = {"negative_prompt": negative_prompt, "steps": steps, "scheduler": scheduler, "guidance": guidance, "strength": strength,
                      "direction": direction, "decoder": decoder, "lora": lora, "lora_scale": lora_scale, "target_domain": target_domain}
            if folder:
                return _translate_folder(ctx, sampler, image, out, seed, reconstruct, force, bundle, prompt=prompt, **shared)
            images, n, elapsed = _sample(sampler, url, image, n, seed, interpolate, frames, reconstruct, prompt, labels=label, eta=eta,
                                         classifier_scale=classifier_scale, height=height, width=width, mask=mask, psi=psi,
                                         mix_seed=mix_seed, mix_layer=mix_layer, **shared)
            d = None if url else sampler.backend.describe()
            resize = _resize_note(sampler, image, reconstruct)
    _save(out, images, one=image is not None and len(images) == 1, strip=interpolate is not None)
    _report(f"{n} image{'s' * (n != 1)} in {elapsed:.2f} s", out, url, model, sampler, d, resize)


def _refuse_what_does_not_apply(ctx, frames, interpolate, n, reconstruct, image, folder: bool) -> None:
    """Options that a latent walk, a reconstruction or a folder's translation would not read: refused, not dropped."""
    from gen.cli.options import given_options
    from gen.errors import GenError, agree

    if frames is not None and interpolate is None:
        raise GenError("--frames counts the images of a latent walk: give --interpolate A B with it (a StyleGAN bundle)")
    if interpolate is not None and n is not None:
        raise GenError("--n does not apply to a latent walk: --frames sets how many images it has")
    if reconstruct and image is None:
        raise GenError("--reconstruct encodes and decodes --image: give --image FILE or --image FOLDER")
    sampling_only = ("n", "steps", "scheduler", "eta", "label", "guidance", "classifier_scale", "psi", "mix_seed", "mix_layer",
                     "interpolate", "prompt", "negative_prompt", "height", "width", "mask", "strength", "direction", "decoder", "lora", "lora_scale",
                     "target_domain")
    if reconstruct and (unused := given_options(ctx, sampling_only)):
        raise GenError(f"{', '.join(unused)} {agree(unused, 'does', 'do')} not apply with --reconstruct "
                       "(an autoencoder encodes and decodes --image)")
    if folder and (unused := given_options(ctx, ("n", "eta", "label", "classifier_scale", "psi", "mix_seed", "mix_layer",
                                                  "interpolate", "height", "width", "mask"))):
        raise GenError(f"{', '.join(unused)} {agree(unused, 'does', 'do')} not apply with --image FOLDER "
                       "(each image in it is translated once, at its own size)")


def _sample(sampler, url, image, n, seed, interpolate, frames, reconstruct, prompt, **options):
    """The images of one call (a sampling, a StyleGAN walk's frames, or a reconstruction of --image), how many
    there are, and the seconds they took."""
    import time

    from gen.errors import GenError

    translation = url is None and "image" in sampler.bundle.spec.required  # pix2pix, CycleGAN: deterministic
    if translation and image is not None and n is not None and n > 1:
        raise GenError(f"--n {n} with one --image: a translation is deterministic, so it would be {n} copies of "
                       "one image; give --image FOLDER to translate several")
    t0 = time.perf_counter()
    if n is None:
        n = 4 if prompt is not None else 1 if image is not None else 16
    walk = {}
    if interpolate is not None:  # n frames from seed A's image to seed B's
        seed, walk, n = interpolate[0], {"interpolate": interpolate[1]}, 16 if frames is None else frames
    if reconstruct:
        images = sampler.reconstruct(image)
        n = len(images)
    else:
        images = sampler.generate(prompt, n=n, seed=seed, image=image, **options, **walk)
    return images, n, time.perf_counter() - t0


def _resize_note(sampler, image, reconstruct: bool) -> str:
    """What the report says when --image was resized to the model's fixed size ("" when it was not)."""
    from gen.cli.options import fixed_size, resize_note

    if image is None or not fixed_size(sampler, reconstruct):
        return ""
    from gen.runtime.image_input import as_uint8_nhwc

    return resize_note({as_uint8_nhwc(image, "image").shape[1:3]}, fixed_size(sampler, reconstruct))


def _save(out: str, images, one: bool, strip: bool) -> None:
    """One translated image as it is (not upscaled in a grid), else a grid (a walk is one strip); replacing
    an earlier --out is said, never silent."""
    import os

    from gen.images import save_grid, save_image

    replaced = os.path.exists(out)
    if one:
        save_image(out, images[0])
    else:
        save_grid(out, images, nrow=len(images) if strip else None)
    if replaced:  # a grid is cheap to remake, so it is replaced, but never silently
        typer.echo(f"(replaced the earlier {out})")


def _check_out(out: str, force: bool, sources) -> None:
    from gen.images import image_format, written_by_gen
    from gen.outputs import check_output_file

    image_format(out)
    check_output_file(out, "--out", written_by_gen, force, sources=sources)


def _translate_folder(ctx, sampler, image, out, seed, reconstruct, force, bundle, **options) -> None:
    """--image FOLDER: every image in it translated (or reconstructed) into the folder --out."""
    from gen.cli.folder import translate_folder
    from gen.cli.options import given_options

    extra = {k: v for k, v in options.items() if v is not None}
    translate_folder(sampler, image, out, seed=seed, reconstruct=reconstruct,
                     out_given=bool(given_options(ctx, ("out",))), force=force, sources=(bundle,), **extra)


def _report(made: str, out: str, url, model, sampler, d, resize: str) -> None:
    """What was made, where, and on which backend (or server)."""
    if url:
        typer.echo(f"{made} from {url} model {model} -> {out}")
        return
    if sampler.plan_note:
        typer.echo(sampler.plan_note)
    providers = sorted({p for v in d.get("providers", {}).values() for p in v})
    typer.echo(f"{made} on {d['backend']} ({d['device']}, {d['precision']}{', ' + ','.join(providers) if providers else ''}) -> {out}"
               f"{resize}")
