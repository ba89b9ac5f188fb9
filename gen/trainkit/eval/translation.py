"""`gen eval` for image-to-image runs: translations of held-out images, scored against the target domain.

- Paired (pix2pix): L1 (images in [-1, 1]), PSNR and SSIM (scikit-image's, data range 2) of each
  translation against its target, beside the same figures for the input itself (the gray photo,
  the bicubic upscale: what the model has to beat).
- Unpaired (CycleGAN), both directions: cycle L1 (A -> B -> A against A), and the Fréchet distance
  of the translations to the held-out target domain beside that of the untranslated inputs.

Fréchet distances use gen's metric classifier (gen.trainkit.eval.evaluate), trained here on labels that
make its features see what the translation must change: for unpaired data, domain x class (digit x
stroke width on the default; the domain alone for unlabelled folders); for paired data, which photo
a crop was cut from (the embedded defaults; folder pairs carry no labels, so no FD is reported).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.trainkit.data import Dataset
from gen.trainkit.families import config_class
from gen.trainkit.eval.metrics import frechet_distance_of


def evaluate_translation(run_path, config, sampler, progress) -> dict:
    t0 = time.perf_counter()
    from gen.trainkit.train import load_run_data

    data = load_run_data(config)
    result = {"run": str(Path(run_path).resolve()), "family": config["family"], "data": config["data"]}
    if data.domain_b is not None:
        result.update(data_b=config["data_b"], **_unpaired(run_path, data, sampler, progress))
    else:
        result.update(_paired(run_path, config, data, sampler, progress))
    result["seconds"] = {"total": round(time.perf_counter() - t0, 2)}
    return result


def translate(sampler, images: np.ndarray, **options) -> np.ndarray:
    """Every image through the sampler, in chunks of its images-per-call limit."""
    step = sampler.limits.n
    return np.concatenate([sampler.generate(n=len(images[i:i + step]), image=images[i:i + step], **options)
                           for i in range(0, len(images), step)])


def _paired(run_path, config, data, sampler, progress) -> dict:
    if not len(data.test_x):
        raise GenError(f"{data.name} has no held-out pairs to score (fewer than 4 pairs)")
    k = data.input_channels
    a, b = data.test_x[:, :k], data.test_x[:, k:]
    progress(f"translating {len(a)} held-out inputs from {run_path} ...")
    out = translate(sampler, config_class(config["family"]).model_inputs(config, a, b))
    shown = a if a.shape[1] == b.shape[1] else (np.repeat(a, b.shape[1], 1) if k == 1 else a.mean(1, keepdims=True))
    metrics, as_output = pair_metrics(out, b), pair_metrics(shown, b)
    if data.num_classes >= 2:  # FD on features of a classifier of the targets' source photo
        targets = Dataset(f"{data.name}-targets", data.train_x[:, k:], data.train_y, b, data.test_y, data.class_names)
        model, _ = _classifier(targets, progress)
        f_b = _features(model, b)
        metrics["fd"], as_output["fd"] = (round(frechet_distance_of(_features(model, x), f_b), 4) for x in (out, shown))
    return {"held_out_pairs": int(len(a)), "metrics": metrics, "input_as_output": as_output}


def _unpaired(run_path, data, sampler, progress) -> dict:
    a, b = data, data.domain_b
    features = _domain_classes(a, b)
    model, accuracy = _classifier(features, progress)
    metrics = {}
    for src, dst, there, back in ((a, b, "AtoB", "BtoA"), (b, a, "BtoA", "AtoB")):
        if len(src.test_x) < 2 or len(dst.test_x) < 2:
            raise GenError(f"{src.name} or {dst.name} has too few held-out images to score (fewer than 2)")
        progress(f"translating {len(src.test_x)} held-out images {there} and back from {run_path} ...")
        out = translate(sampler, src.test_x, direction=there)
        cycled = translate(sampler, out, direction=back)
        f_dst = _features(model, dst.test_x)
        metrics[there] = {
            "fd_translated_vs_target": round(frechet_distance_of(_features(model, out), f_dst), 4),
            "fd_input_vs_target": round(frechet_distance_of(_features(model, src.test_x), f_dst), 4),
            "cycle_l1": round(float(np.abs(cycled - src.test_x).mean()), 4),
        }
    return {"held_out": {"A": int(len(a.test_x)), "B": int(len(b.test_x))}, "metrics": metrics,
            "classifier": {"classes": features.num_classes, "held_out_accuracy": round(accuracy, 4)}}


def _domain_classes(a: Dataset, b: Dataset) -> Dataset:
    """Both domains in one labelled set: domain x class where both carry the same classes, else the domain."""
    by_class = a.class_names and a.class_names == b.class_names and (a.train_y >= 0).all() and (b.train_y >= 0).all()
    k = len(a.class_names) if by_class else 1

    def labels(domain, y):
        return (domain * k + (y if by_class else 0)).astype(np.int64)

    names = [f"{side}:{c}" for side in "AB" for c in (a.class_names if by_class else [""])]
    return Dataset(f"{a.name}-{b.name}", np.concatenate([a.train_x, b.train_x]),
                   np.concatenate([labels(0, a.train_y), labels(1, b.train_y)]),
                   np.concatenate([a.test_x, b.test_x]), np.concatenate([labels(0, a.test_y), labels(1, b.test_y)]),
                   names)


def _classifier(data: Dataset, progress):
    from gen.trainkit.eval.classifier import load_or_train_classifier

    model, accuracy, _ = load_or_train_classifier(data, progress)
    return model, accuracy


def _features(model, images):
    from gen.trainkit.eval.classifier import embed

    return embed(model, images)[0]


def pair_metrics(x: np.ndarray, y: np.ndarray) -> dict:
    from skimage.metrics import structural_similarity

    psnr = [10 * np.log10(4.0 / max(float(np.mean((p.astype(np.float64) - q) ** 2)), 1e-12)) for p, q in zip(x, y)]
    ssim = [structural_similarity(p, q, data_range=2.0, channel_axis=0) for p, q in zip(x, y)]
    return {"l1": round(float(np.abs(x - y).mean()), 4), "psnr_db": round(float(np.mean(psnr)), 3),
            "ssim": round(float(np.mean(ssim)), 4)}
