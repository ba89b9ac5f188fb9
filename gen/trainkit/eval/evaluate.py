"""`gen eval`: score a run's samples on features of a classifier trained on the run's own data.

No Inception weights ship offline, so the default metrics use a small CNN that gen trains on the
labelled training split (cached per dataset fingerprint) and are named for it: `fd_<data>`,
`is_<data>`. They are comparable between runs on the same data, not with published FIDs. A real
Inception FID is added when `--inception` points at local weights (as ONNX).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gen.trainkit.defaults import EVAL_N
from gen.errors import GenError, agree, flag, with_article
from gen.fileio import write_json
from gen.trainkit.config import IMAGES
from gen.trainkit.data import load_dataset
from gen.trainkit.families import config_class
from gen.trainkit.eval.classifier import embed, load_or_train_classifier
from gen.trainkit.eval.metrics import frechet_distance_of, inception_style_score, precision_recall

def run_sampler(run_path: str):
    """The shipped Sampler (gen.runtime: numpy schedulers, the family's sampling routine) over the
    run's own weights on the eager backend: what a bundle exported from this run will sample, with
    no export needed. Returns (config, sampler)."""
    from gen.runtime.backends.eager import EagerBackend
    from gen.runtime.bundle import Bundle
    from gen.runtime.sampler import Sampler
    from gen.trainkit.rundir import RunDir

    run = RunDir(run_path)
    config, nets, modules = run.build_components()
    bundle = Bundle(run.path, nets.manifest(config))
    return config, Sampler(bundle, backend=EagerBackend(bundle, "cpu", "fp32", None, modules=modules))


def bundle_sampler(bundle_path: str, backend: str, precision: str):
    """A bundle's own files at one precision (int8 and fp16 included): what is deployed, scored
    against the data its run trained on. Returns (config, sampler)."""
    from gen.fileio import read_json
    from gen.runtime.bundle import load_bundle
    from gen.runtime.sampler import Sampler

    bundle = load_bundle(bundle_path)
    if "config" not in bundle.manifest.weights:
        raise GenError(f"bundle {bundle_path} has no run config (weights.config), so its training data is unknown; "
                       "gen eval scores bundles exported from `gen train` runs")
    config = read_json(bundle.resolve(bundle.manifest.weights["config"]), "bundle weights config")
    from gen.runtime.host import usable_cores

    # a pinned count: scores must not move with what else runs on the host (gen.runtime.threads)
    return config, Sampler(bundle_path, backend=backend, precision=precision, threads=usable_cores())


def sample_with(sampler, n: int, seed: int, labels=None, batch: int = 500, **options) -> np.ndarray:
    """n images in chunks of `batch` (at most the family's images-per-call limit); chunk i is seeded
    seed + 1_000_003 i, so chunk 0 is `seed` itself."""
    batch = min(batch, sampler.limits.n)
    out = []
    for i in range(0, n, batch):
        lab = None if labels is None else labels[i : i + batch]
        out.append(sampler.generate(n=min(batch, n - i), seed=seed + 1_000_003 * (i // batch), labels=lab, **options))
    return np.concatenate(out)


EVAL_OPTIONS = {"steps", "guidance", "scheduler", "psi", "classifier_scale"}  # the sampling options gen eval passes on


def evaluate_run(run_path: str, n: int | None = None, seed: int | None = None, steps: int | None = None,
                 guidance: float | None = None, inception: str | None = None, progress=lambda message: None,
                 scheduler: str | None = None, backend: str | None = None, precision: str | None = None,
                 psi: float | None = None, classifier_scale: float | None = None) -> dict:
    """Score a run and write RUN/eval.json, holding the run's lock: a `gen train` still writing (or
    replacing) it makes this fail at once rather than score one run and file it under another.

    `run_path` may also be a bundle (a gen.json inside): its files are sampled on `backend` (ort) at
    `precision` (fp32), so an int8 or fp16 bundle is scored as deployed; nothing is written into it.
    `n` (default EVAL_N) and `seed` (0) are for runs that sample: a translation or a model that cannot
    sample is scored on the held-out set, so they are refused there rather than ignored."""
    from gen.outputs import output_lock
    from gen.runtime.manifest import MANIFEST

    if not Path(run_path).is_dir():
        raise GenError(f"run directory not found: {run_path}")
    is_bundle = (Path(run_path) / MANIFEST).is_file()
    if not is_bundle and (backend or precision):
        raise GenError("--backend and --precision choose a bundle's files; a run is scored on its own weights (eager fp32)")
    with output_lock(run_path, option="BUNDLE" if is_bundle else "RUN"):
        sampling = {k: v for k, v in (("steps", steps), ("guidance", guidance), ("scheduler", scheduler), ("psi", psi),
                                                    ("classifier_scale", classifier_scale)) if v is not None}
        if is_bundle:
            backend = backend or "ort"
            precision = precision or (None if backend == "auto" else "fp32")  # auto: the plan's precisions
            config, sampler = bundle_sampler(run_path, backend, precision)
            described = (f"bundle files, {sampler.plan_note}" if sampler.plan_note
                         else f"bundle files, {backend} backend, {precision}")
        else:
            config, sampler = run_sampler(run_path)
            described = "gen.runtime Sampler, eager backend (the shipped schedulers)"
        with sampler:
            result = _evaluate(run_path, config, sampler, n, seed, sampling, inception, progress)
        result["sampler"] = described
        if not is_bundle:
            from gen.trainkit.rundir import RunDir

            write_json(RunDir(run_path).eval_path, result)
        return result


def _evaluate(run_path, config, sampler, n, seed, options, inception, progress) -> dict:
    bundle = sampler.bundle
    # refused before minutes of sampling, not found unused (or missing) afterwards
    accepted = set(bundle.spec.accepts(bundle)) if bundle.spec.can_generate(bundle) else set()
    unused = [flag(k) for k in options if k not in accepted]
    family = config_class(config["family"])  # what it declares: labels, the data it trains on
    # a family that can condition: its conditional runs take --guidance / --label
    kind = ("unconditional " if not bundle.manifest.conditioning.num_classes and family.labels else "") + config["family"]
    if unused:
        raise GenError(f"{', '.join(unused)} {agree(unused, 'does', 'do')} not apply to {with_article(kind)} run "
                       f"(its gen eval takes {', '.join(flag(a) for a in sorted(accepted & EVAL_OPTIONS)) or 'no sampling options'})")
    if inception:
        from gen.trainkit.eval.inception import inception_session

        inception = inception_session(inception)
    translation = family.data != IMAGES  # image-to-image: translations, not samples
    given = [name for name, value in (("--n", n), ("--seed", seed)) if value is not None]
    if given and (translation or family.evaluation or not bundle.spec.can_generate(bundle)):
        raise GenError(f"{', '.join(given)} {agree(given, 'does', 'do')} not apply to {with_article(config['family'])} run: "
                       "gen eval scores it on the whole held-out set, not on samples")
    n, seed = EVAL_N if n is None else n, 0 if seed is None else seed
    if family.evaluation:  # the family scores its runs its own way (a denoiser: restorations of corrupted images)
        return family.evaluator()(run_path, config, sampler, progress)
    if translation:
        from gen.trainkit.eval.translation import evaluate_translation

        return evaluate_translation(run_path, config, sampler, progress)
    if n < 10:
        raise GenError(f"--n must be at least 10 to fit feature statistics, got {n}")
    used = {}
    if accepted:  # bad values (--steps 0, --scheduler foo) refused now, not after minutes of training and sampling
        probe = {"n": 10, "labels": np.arange(10) % config["num_classes"]} if "labels" in accepted else {}
        bound = bundle.spec.bind(bundle, {**{k: v for k, v in options.items() if v is not None}, **probe}, sampler.limits)
        used = bundle.spec.sampling_used(bundle, bound)  # what it samples at, defaults included: said, not implied
    t0 = time.perf_counter()
    data = load_dataset(config["data"], config["image_size"], config["channels"])
    reconstruction = None
    if bundle.spec.encoder is not None and bundle.spec.encoder in bundle.manifest.components:
        progress(f"reconstructing {len(data.test_x)} held-out images ...")
        reconstruction = reconstruction_metrics(sampler, data.test_x)
    if not bundle.spec.can_generate(bundle):  # an autoencoder, or a VQ-VAE without its prior
        return {"run": str(Path(run_path).resolve()), "family": config["family"], "data": config["data"],
                "held_out_images": int(len(data.test_x)), "reconstruction": reconstruction,
                "metrics": {}, "note": "this model cannot sample (no prior), so only its reconstructions are scored",
                "seconds": {"total": round(time.perf_counter() - t0, 2)}}
    if data.num_classes < 2 and not inception:
        raise GenError(
            f"{config['data']} has no class labels, so gen cannot train its metric classifier; "
            "use labelled data (class sub-folders) or pass --inception"
        )
    # labels are requested where the bundle takes them: a conditional model, or one with a noisy classifier
    conditional = "labels" in bundle.spec.accepts(bundle)
    labels = np.arange(n) % config["num_classes"] if conditional else None
    at = ", ".join(f"{k} {v}" for k, v in used.items())
    progress(f"sampling {n} images from {run_path}{f' ({at})' if at else ''} ...")
    fake = sample_with(sampler, n, seed, labels=labels, **options)
    progress(f"  {time.perf_counter() - t0:.1f} s; scoring them against {len(data.test_x)} held-out images ...")
    t_sample = time.perf_counter() - t0

    name = _metric_suffix(data.name)
    metrics, reference, classifier = (_classifier_metrics(data, fake, labels, seed, name, progress)
                                      if data.num_classes >= 2 else ({}, {}, {}))
    if inception:
        from gen.trainkit.eval.inception import inception_features

        real = np.concatenate([data.train_x, data.test_x])
        metrics["fid_inception"] = frechet_distance_of(inception_features(inception, fake), inception_features(inception, real))
    result = {
        "run": str(Path(run_path).resolve()), "family": config["family"], "data": config["data"], "n": n, "seed": seed,
        **({"reconstruction": reconstruction} if reconstruction else {}),
        "held_out_images": int(len(data.test_x)), "sampling": used,
        "metrics": {k: round(v, 4) for k, v in metrics.items()},
        "reference": {k: round(v, 4) for k, v in reference.items()},
        "classifier": classifier,
        "seconds": {"sampling": round(t_sample, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    return result


def _classifier_metrics(data, fake: np.ndarray, labels, seed: int, name: str, progress) -> tuple[dict, dict, dict]:
    """(metrics, reference figures, the classifier's own figures) on the features of the classifier of
    the run's labelled data: fd, is, k-NN precision/recall, label accuracy of requested labels."""
    model, acc, cache = load_or_train_classifier(data, progress)
    f_fake, p_fake = embed(model, fake)
    f_test, p_test = embed(model, data.test_x)
    f_train, _ = embed(model, data.train_x)
    noise = np.random.default_rng(seed).standard_normal(fake.shape).clip(-1, 1).astype(np.float32)
    f_noise, _ = embed(model, noise)
    precision, recall = precision_recall(f_test, f_fake, k=3)
    metrics = {f"fd_{name}": frechet_distance_of(f_fake, f_test), f"is_{name}": inception_style_score(p_fake),
               "precision_k3": precision, "recall_k3": recall}
    if labels is not None:
        metrics["label_accuracy"] = float((p_fake.argmax(1) == labels).mean())
    reference = {
        f"fd_{name}_real_train_vs_held_out": frechet_distance_of(f_train, f_test),
        f"fd_{name}_gaussian_noise": frechet_distance_of(f_noise, f_test),
        f"is_{name}_held_out": inception_style_score(p_test),
    }
    return metrics, reference, {"held_out_accuracy": acc, "feature_dim": int(f_fake.shape[1]), "cache": str(cache)}


def reconstruction_metrics(sampler, images: np.ndarray) -> dict:
    """Held-out images through the autoencoder: MSE and PSNR (images in [-1, 1], peak-to-peak 2), and
    for discrete codes (VQ-VAE) the codebook's perplexity and how many codes the held-out set uses."""
    bundle, backend, step = sampler.bundle, sampler.backend, sampler.limits.n
    spec = bundle.spec
    chunks = [np.ascontiguousarray(images[i:i + step], dtype=np.float32) for i in range(0, len(images), step)]
    latents = [spec.encode(backend, x) for x in chunks]  # encoded once: decoded here, counted below for codes
    recon = np.concatenate([spec.decode(backend, z) for z in latents])
    err = ((recon.astype(np.float64) - images) ** 2).reshape(len(images), -1).mean(1)
    out = {"mse": round(float(err.mean()), 6), "psnr_db": round(float(np.mean(10 * np.log10(4.0 / np.maximum(err, 1e-12)))), 3)}
    codes = np.concatenate(latents)
    if codes.dtype.kind in "iu":
        size = int(bundle.signature(spec.encoder)["outputs"][0]["range"][1])  # codes lie in [0, codebook size)
        counts = np.bincount(codes.reshape(-1), minlength=size).astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        out.update(codebook_perplexity=round(float(np.exp(-(p * np.log(p)).sum())), 3), codes_used=int((counts > 0).sum()),
                   codebook_size=int(size))
    return out


def _metric_suffix(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()) or "data"
