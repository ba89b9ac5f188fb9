"""`gen eval` for a denoising autoencoder: held-out images corrupted at two levels (half the run's
and the run's own), restored through the Sampler (the run's weights, or a bundle's files), scored
by PSNR and SSIM against the clean images beside two figures that say what the restoration is
worth: the corrupted input's own and a classical denoiser's (scikit-image's non-local means and
Chambolle's total variation, each at the parameter that scores best on 64 corrupted training images,
so the baseline is tuned as fairly as the model was trained).

The corrupted inputs are rounded to 8 bits, as a noisy image file is, before anything sees them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gen.trainkit.eval.translation import pair_metrics, translate
from gen.trainkit.families.dae import LEVELS, level

TUNE_IMAGES = 64  # training images the classical denoisers' parameters are chosen on
GRID_IMAGES = 32  # held-out images in RUN/eval_restored.png: rows of noisy, restored, clean
STRENGTHS = (0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.25, 0.4)  # h of non-local means, weight of TV ([0, 1] images)
COLUMNS = (("noisy", "noisy input"), ("restored", "restored"), ("nl_means", "non-local means"), ("tv", "TV (Chambolle)"))


def evaluate_dae(run_path, config, sampler, progress) -> dict:
    from gen.trainkit.train import load_run_data

    t0 = time.perf_counter()
    data = load_run_data(config)
    clean, kind = data.test_x, config["corruption"]
    levels = (round(level(config) / 2, 4), level(config))
    rows, chosen = {}, {}
    for i, lv in enumerate(levels):
        name = f"{LEVELS[kind]} {lv}"
        noisy = corrupted(clean, kind, lv, seed=i)
        progress(f"restoring {len(clean)} held-out images at {kind} {name} from {run_path} ...")
        restored = translate(sampler, noisy)
        tune_clean = data.train_x[:TUNE_IMAGES]
        tune_noisy = corrupted(tune_clean, kind, lv, seed=100 + i)
        row = {"noisy": pair_metrics(noisy, clean), "restored": pair_metrics(restored, clean)}
        for method in ("nl_means", "tv"):
            strength = _tuned(method, tune_noisy, tune_clean)
            row[method] = pair_metrics(classical(method, noisy, strength), clean)
            chosen[f"{method} at {name}"] = strength
        rows[name] = row
    for line in table(kind, rows):
        progress(line)
    result = {"run": str(Path(run_path).resolve()), "family": config["family"], "data": config["data"],
              "corruption": kind, "held_out_images": int(len(clean)), "levels": rows,
              "classical_parameters": chosen, "seconds": {"total": round(time.perf_counter() - t0, 2)}}
    grid = _write_grid(run_path, noisy[:GRID_IMAGES], restored[:GRID_IMAGES], clean[:GRID_IMAGES])
    if grid:
        result["grid"] = grid
    return result


def corrupted(clean: np.ndarray, kind: str, lv: float, seed: int) -> np.ndarray:
    """`clean` corrupted as in training (a fixed seed), rounded to 8 bits."""
    import torch

    from gen.trainkit.families.dae.corruption import corrupt

    x = corrupt(torch.from_numpy(clean), kind, lv, torch.Generator().manual_seed(seed)).numpy()
    return (np.round((x + 1) * 127.5) / 127.5 - 1).astype(np.float32)


def classical(method: str, images: np.ndarray, strength: float) -> np.ndarray:
    """Each NCHW [-1, 1] image through scikit-image's denoiser, on [0, 1] HWC as it expects."""
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    size = images.shape[-1]
    out = []
    for x in images:
        im = (x.transpose(1, 2, 0).astype(np.float64) + 1) / 2
        if method == "nl_means":  # patches scaled to the image: 3 px (distance 3) below 16 px, else 5 px (distance 6)
            small = size <= 16
            y = denoise_nl_means(im, h=strength, patch_size=3 if small else 5, patch_distance=3 if small else 6,
                                 fast_mode=True, channel_axis=-1)
        else:
            y = denoise_tv_chambolle(im, weight=strength, channel_axis=-1)
        out.append(y.reshape(im.shape).transpose(2, 0, 1) * 2 - 1)
    return np.stack(out).astype(np.float32)


def _tuned(method: str, noisy: np.ndarray, clean: np.ndarray) -> float:
    """The strength of STRENGTHS whose restorations of the tuning images score the best PSNR."""
    return max(STRENGTHS, key=lambda s: pair_metrics(classical(method, noisy, s), clean)["psnr_db"])


def table(kind: str, rows: dict) -> list[str]:
    """The PSNR / SSIM table as text lines, one row per level."""
    head = f"{kind:<16}" + "".join(f"{title:>22}" for _, title in COLUMNS)
    lines = [head, " " * 16 + "".join(f"{'PSNR dB   SSIM':>22}" for _ in COLUMNS)]
    for name, row in rows.items():
        lines.append(f"{name:<16}" + "".join(f"{row[k]['psnr_db']:>14.2f}{row[k]['ssim']:>8.3f}" for k, _ in COLUMNS))
    return lines


def _write_grid(run_path, noisy, restored, clean) -> str | None:
    """RUN/eval_restored.png (rows of noisy, restored, clean at the higher level); nothing is written
    into a bundle."""
    from gen.runtime.manifest import MANIFEST

    if (Path(run_path) / MANIFEST).is_file():
        return None
    from gen.images import save_grid

    rows = [part[i:i + 8] for i in range(0, len(clean), 8) for part in (noisy, restored, clean)]
    path = Path(run_path) / "eval_restored.png"
    save_grid(path, np.concatenate(rows), nrow=8)
    return str(path)
