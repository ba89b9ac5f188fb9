"""`gen distill decoder BUNDLE --out RUN`: a tiny decoder (gen.nets.tiny_decoder) distilled from a
Stable Diffusion bundle's own VAE decoder, to be exported beside it (`gen export BUNDLE --tiny-decoder RUN`).

The teacher is the bundle's `vae_decoder` as deployed (ONNX Runtime fp32), on the latents it really
decodes: (a) the final latents of real sampling runs of the bundle (gen's Sampler, prompts from a
small list here, recorded at the decoder's input) and (b) latents of photo crops (scikit-image's
bundled photos) through the bundle's `vae_encoder`. Part of both is held out; the student never sees
it, and its PSNR against the teacher on it (images clipped to [-1, 1], as generate() returns them)
is what the bundle records. Each step trains on random crops of the latents and the teacher's
matching pixel crops (the nets are convolutional); the loss is MSE to the teacher's images clipped to
[-1, 1], which is what generate() returns.

    RUN/config.json          bundle, teacher hash, widths, data counts, held-out PSNR, "family": "tiny-decoder"
    RUN/weights.safetensors  the student (its config in the metadata)
    RUN/samples.png          held-out latents: the teacher's images (top row), the student's (bottom row)
    RUN/metrics.jsonl        loss per logged step; last, the held-out PSNR
"""

from __future__ import annotations

import numpy as np

from gen.errors import GenError
from gen.trainkit.sd import SdRunKind

FAMILY = "tiny-decoder"
RUN_KIND = SdRunKind(FAMILY, "gen export BUNDLE --tiny-decoder RUN")
NEEDS = ("vae_decoder", "vae_encoder")  # the teacher and the image encoder, components of the bundle
# `gen distill decoder`'s defaults; the CLI reads them from here
# steps: 5000 reached 26.6 dB held out on a trained VAE where 1500 reached 24.3 (docs/RESULTS.md, "Tiny decoder")
DEFAULTS = {"steps": 5000, "lr": 2e-3, "batch_size": 8, "crop": 16, "images": 96, "prompts": 8, "sample_steps": 4,
            "held_out": 0.15, "widths": [64, 64, 32, 16], "blocks": [2, 2, 1, 1], "seed": 0, "log_every": 50,
            "threads": None}
PROMPTS = ("a photograph of an astronaut riding a horse", "a red house by a lake", "a bowl of fruit on a wooden table",
           "a portrait of an old man, oil painting", "a city street at night in the rain", "a cat sleeping on a sofa",
           "mountains under a starry sky", "a watercolor of a sailing boat", "a close-up of a sunflower",
           "a castle on a hill, fantasy art", "a dog running on the beach", "a forest path in autumn")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "hubble_deep_field", "immunohistochemistry",
          "retina", "colorwheel", "brick", "gravel", "moon", "clock")
GRID = 4


def distill_decoder(bundle: str, out: str, options: dict, force: bool = False, progress: bool = True):
    """Distil into `out`, one writer at a time; returns (the run, its config with the held-out figures)."""
    from gen.trainkit.sd.base import run_output

    with run_output(out, "distill decoder"):
        return _distill(bundle, out, options, force, progress)


def check(config: dict) -> None:
    from gen.trainkit.sd.base import check_options

    check_options(config, ("steps", "batch_size", "crop", "images", "prompts", "sample_steps", "log_every"))
    if not 0 < config["held_out"] < 1:
        raise GenError(f"--held-out must be a fraction in (0, 1), got {config['held_out']}", "held_out")
    if len(config["widths"]) != len(config["blocks"]) or len(config["widths"]) < 2:
        raise GenError(f"--widths and --blocks need one entry per resolution (at least 2), got {config['widths']} and "
                       f"{config['blocks']}", "widths")


def _distill(bundle_path, out, options, force, progress):
    from gen.fileio import write_json
    from gen.runtime.bundle import load_bundle
    from gen.trainkit.rundir import RunDir

    config = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    check(config)
    bundle = load_bundle(bundle_path)
    missing = [c for c in NEEDS if c not in bundle.components]
    if missing:
        raise GenError(f"{bundle_path} has no {missing[0]!r} component: a tiny decoder is distilled from a latent "
                       "diffusion bundle's VAE (gen export --model sd ...)", "bundle")
    run = RunDir(out)
    run.check(resume=False, force=force, resumable=False, sources=(bundle_path,))
    say = print if progress else (lambda *_: None)
    data = teacher_data(bundle, config, say)
    s = bundle.sampling
    config.update(bundle=str(bundle.path), family=FAMILY, latent_channels=int(s.latent_channels),
                  vae_scale_factor=int(s.vae_scale_factor), scale=float(data["train_latents"].std()),
                  teacher_sha256=bundle.components["vae_decoder"].files["fp32"].sha256,
                  image_size=[bundle.image.height, bundle.image.width],
                  **data["counts"])
    final, run = run, run.claim(force)
    write_json(run.config_path, config)
    net = train(data, config, run, progress)
    config.update(evaluate(net, data, run.path / "samples.png"))
    run.log({"step": config["steps"], **{k: config[k] for k in ("psnr_db", "psnr_db_train", "psnr_db_mean_image")}})
    run.save_weights({k: v.detach().contiguous() for k, v in net.state_dict().items()}, config)
    write_json(run.config_path, config)
    final.commit(run)
    return final, config


DATA_KEYS = ("images", "prompts", "sample_steps", "held_out", "seed")  # what the teacher's data depends on


def teacher_data(bundle, config: dict, say) -> dict:
    """The teacher's data (gen's cache keeps it, keyed by the teacher file and DATA_KEYS, so a second
    distillation with other training options skips the sampling and decoding)."""
    import hashlib
    import json

    from gen.cache import cache_dir
    from gen.fileio import load_safetensors, save_safetensors

    key = json.dumps([bundle.components["vae_decoder"].files["fp32"].sha256, bundle.components["vae_encoder"].files["fp32"].sha256,
                      {k: config[k] for k in DATA_KEYS}], sort_keys=True)
    path = cache_dir() / "tiny-decoder-data" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.safetensors"
    if path.is_file():
        say(f"the teacher's data from gen's cache: {path}")
        tensors, meta = load_safetensors(path)
        return {**{k: v.numpy() for k, v in tensors.items()}, "counts": json.loads(meta["counts"])}
    data = make_teacher_data(bundle, config, say)
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(path, {k: torch.from_numpy(v) for k, v in data.items() if k != "counts"},
                     {"counts": json.dumps(data["counts"])})
    return data


def make_teacher_data(bundle, config: dict, say) -> dict:
    """Latents (sampled and encoded) and the teacher's images of them, split into train and held out."""
    from gen.runtime.backends.recording import RecordingBackend

    with RecordingBackend(bundle, config["threads"]) as backend:
        say(f"recording the decoder's input in {config['prompts']} sampling runs ({config['sample_steps']} steps) ...")
        sampled = sampled_latents(backend, config)
        say(f"encoding {config['images']} photo crops with the bundle's vae_encoder ...")
        encoded = encoded_latents(backend, bundle, config)
        rng = np.random.default_rng(config["seed"])
        train, held = [], []
        for latents in (sampled, encoded):  # each kind held out in the same share
            order = rng.permutation(len(latents))
            k = max(1, round(len(latents) * config["held_out"]))
            held.append(latents[order[:k]])
            train.append(latents[order[k:]])
        train, held = np.concatenate(train), np.concatenate(held)
        say(f"the teacher (vae_decoder, ORT fp32) decodes {len(train) + len(held)} latents ...")
        return {"train_latents": train, "train_images": decode(backend, train), "held_latents": held,
                "held_images": decode(backend, held),
                "counts": {"sampled_latents": len(sampled), "encoded_latents": len(encoded), "train_latents": len(train)}}


def sampled_latents(backend, config: dict) -> np.ndarray:
    """What the bundle's sampler hands its decoder at the end of real runs, one prompt per image."""
    from gen.runtime.sources import BundleSource

    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(config["prompts"])]
    source = BundleSource(backend.bundle, backend)
    out = []
    for i in range(0, len(prompts), 4):  # a few prompts per call: the UNet's batch stays small
        source.generate({"prompt": prompts[i:i + 4], "seed": config["seed"] + i, "steps": config["sample_steps"]})
        out.append(backend.recorded["vae_decoder"][-1]["latent_sample"])
    backend.recorded.clear()
    return np.concatenate(out)


def encoded_latents(backend, bundle, config: dict) -> np.ndarray:
    """The vae_encoder's latents of photo crops at the bundle's image size."""
    crops = photo_crops(bundle.image.height, bundle.image.width, config["images"], config["seed"])
    x = crops.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5) - 1
    return np.concatenate([backend.run("vae_encoder", {"sample": x[i:i + 4]}) for i in range(0, len(x), 4)])


def photo_crops(height: int, width: int, count: int, seed: int) -> np.ndarray:
    """`count` uint8 NHWC crops of scikit-image's bundled photos, at random places and two scales."""
    from PIL import Image
    from skimage import data as photos

    rng = np.random.default_rng(seed)
    pictures = []
    for name in PHOTOS:
        a = getattr(photos, name)()
        a = np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3]
        pic = Image.fromarray(a.astype(np.uint8))
        for scale in (1.0, 2.0):  # whole-scene and detail crops
            side = max(height, width) * scale / min(pic.size)
            pictures.append(np.asarray(pic.resize((max(width, round(pic.width * side)), max(height, round(pic.height * side))),
                                                  Image.Resampling.LANCZOS)))
    out = []
    for i in range(count):
        p = pictures[i % len(pictures)]
        y, x = rng.integers(0, p.shape[0] - height + 1), rng.integers(0, p.shape[1] - width + 1)
        out.append(p[y:y + height, x:x + width])
    return np.stack(out)


def decode(backend, latents: np.ndarray) -> np.ndarray:
    return np.concatenate([backend.run("vae_decoder", {"latent_sample": latents[i:i + 4]})
                           for i in range(0, len(latents), 4)])


def train(data: dict, config: dict, run, progress: bool):
    """MSE between the student's and the teacher's pixels on random latent crops; Adam, cosine decay."""
    import time

    import torch
    from tqdm import tqdm

    from gen.nets.tiny_decoder import build

    if config["threads"]:
        torch.set_num_threads(config["threads"])
    torch.manual_seed(config["seed"])
    net = build(config)
    # the teacher's images as generate() returns them: a random or saturating VAE's outliers (|x| up to 9
    # on the sd_peers model) would otherwise dominate the loss for pixels nobody sees past +-1
    latents, images = torch.from_numpy(data["train_latents"]), torch.from_numpy(data["train_images"].clip(-1, 1))
    f, c = config["vae_scale_factor"], min(config["crop"], latents.shape[2], latents.shape[3])
    opt = torch.optim.AdamW(net.parameters(), lr=config["lr"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config["lr"], total_steps=config["steps"], pct_start=0.05)
    g = torch.Generator().manual_seed(config["seed"])
    bar = tqdm(range(config["steps"]), desc="distill decoder", unit="step", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    for step in bar:
        idx = torch.randint(len(latents), (config["batch_size"],), generator=g).tolist()
        ys = torch.randint(latents.shape[2] - c + 1, (len(idx),), generator=g).tolist()
        xs = torch.randint(latents.shape[3] - c + 1, (len(idx),), generator=g).tolist()
        z = torch.stack([latents[i, :, y:y + c, x:x + c] for i, y, x in zip(idx, ys, xs)])
        target = torch.stack([images[i, :, y * f:(y + c) * f, x * f:(x + c) * f] for i, y, x in zip(idx, ys, xs)])
        loss = torch.nn.functional.mse_loss(net(z), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.5f}", refresh=False)
        if (step + 1) % config["log_every"] == 0 or step + 1 == config["steps"]:
            run.log({"step": step + 1, "loss": round(loss.item(), 6),
                     "steps_per_s": round((step + 1) / (time.perf_counter() - t0), 3)})
    return net.eval().requires_grad_(False)


def evaluate(net, data: dict, grid_path=None) -> dict:
    """Held-out and training PSNR of the student against the teacher (images clipped to [-1, 1]), and
    the PSNR of the held-out images' mean image (what a decoder that ignores its input would score)."""
    import torch

    from gen.nets.tiny_decoder import parameters
    from gen.runtime.quality import psnr

    def student(latents):
        with torch.no_grad():
            return np.concatenate([net(torch.from_numpy(latents[i:i + 4])).numpy() for i in range(0, len(latents), 4)])

    held, ref = student(data["held_latents"]).clip(-1, 1), data["held_images"].clip(-1, 1)
    train = student(data["train_latents"][:16]).clip(-1, 1)
    mean = np.broadcast_to(ref.mean(0, keepdims=True), ref.shape)
    if grid_path is not None:
        from gen.images import save_grid

        save_grid(grid_path, np.concatenate([ref[:GRID], held[:GRID]]), nrow=min(GRID, len(ref)))
    return {"psnr_db": round(psnr(ref, held), 2), "psnr_db_train": round(psnr(data["train_images"][:16].clip(-1, 1), train), 2),
            "psnr_db_mean_image": round(psnr(ref, mean), 2), "held_out_latents": len(ref), "params": parameters(net)}
