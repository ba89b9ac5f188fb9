"""`gen eval` for StarGAN: every held-out image translated into every other domain (each ordered pair
of domains), scored two ways against the target domain's held-out images:

- accuracy: the share of translations that a domain classifier trained on the real images puts in the
  target domain (its held-out accuracy on real images reported beside);
- Fréchet distance of the translations to the target domain, beside that of the untranslated inputs,
  on that classifier's features; plus the cycle L1 of translating back.

One classifier does both (gen's metric classifier, trained once and cached): of domain x digit on
`digits-strokes` (30 classes, so its features see the stroke and the shape, as CycleGAN's figures use;
a domain's probability is the sum over its digits), of the domain alone on folders.

RUN/eval_translations.png shows held-out inputs (rows) and their translation into each domain (columns).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.trainkit.eval.metrics import frechet_distance_of
from gen.trainkit.eval.translation import translate

GRID_INPUTS = 4  # held-out inputs per domain in the grid


def evaluate_stargan(run_path, config, sampler, progress) -> dict:
    from gen.trainkit.data.domains import domain_classes
    from gen.trainkit.eval.classifier import embed, load_or_train_classifier
    from gen.trainkit.train import load_run_data

    t0 = time.perf_counter()
    data = load_run_data(config)
    names = data.class_names
    by_domain = [data.test_x[data.test_y == d] for d in range(len(names))]
    if min(len(x) for x in by_domain) < 2:
        raise GenError(f"{data.name} has a domain with fewer than 2 held-out images: too few to score")
    labelled = domain_classes(config["data"], config["image_size"], config["channels"]) or data
    metric, metric_acc, _ = load_or_train_classifier(labelled, progress)
    per_domain = labelled.num_classes // len(names)  # classes per domain, in domain-major order

    def domains_of(images):  # (features, most probable domain) of each image
        feats, probs = embed(metric, images)
        return feats, probs.reshape(len(probs), len(names), per_domain).sum(2).argmax(1)

    features = [domains_of(x)[0] for x in by_domain]
    judge_acc = float(np.mean(domains_of(data.test_x)[1] == data.test_y))
    pairs, grid = {}, {}
    for s, source in enumerate(by_domain):
        progress(f"translating {len(source)} held-out {names[s]} images into each other domain from {run_path} ...")
        for t in range(len(names)):
            out = translate(sampler, source, target_domain=str(t))
            grid[s, t] = out[:GRID_INPUTS]
            if s == t:
                continue
            back = translate(sampler, out, target_domain=str(s))
            feats, predicted = domains_of(out)
            pairs[f"{names[s]}->{names[t]}"] = {
                "accuracy": round(float((predicted == t).mean()), 4),
                "fd_translated_vs_target": round(frechet_distance_of(feats, features[t]), 4),
                "fd_input_vs_target": round(frechet_distance_of(features[s], features[t]), 4),
                "cycle_l1": round(float(np.abs(back - source).mean()), 4)}
    result = {"run": str(Path(run_path).resolve()), "family": config["family"], "data": config["data"],
              "domains": list(names), "held_out": {n: len(x) for n, x in zip(names, by_domain)}, "pairs": pairs,
              "accuracy_min": min(p["accuracy"] for p in pairs.values()),
              "classifier": {"domain_held_out_accuracy": round(judge_acc, 4),
                             "metric_classes": labelled.num_classes,
                             "metric_held_out_accuracy": round(metric_acc, 4)}}
    for line in table(pairs):
        progress(line)
    path = _write_grid(run_path, by_domain, grid, len(names))
    if path:
        result["grid"] = path
    result["seconds"] = {"total": round(time.perf_counter() - t0, 2)}
    return result


def table(pairs: dict) -> list[str]:
    """The per-pair figures as aligned lines."""
    lines = [f"{'pair':<18} {'accuracy':>8} {'fd translated':>13} {'fd input':>9} {'cycle L1':>8}"]
    for pair, m in pairs.items():
        lines.append(f"{pair:<18} {m['accuracy']:>8.1%} {m['fd_translated_vs_target']:>13.2f} "
                     f"{m['fd_input_vs_target']:>9.2f} {m['cycle_l1']:>8.4f}")
    return lines


def _write_grid(run_path, inputs, translated, domains: int) -> str | None:
    """RUN/eval_translations.png: a row per held-out input (GRID_INPUTS of each domain), the input and
    then its translation into each domain; nothing is written into a bundle."""
    from gen.images import save_grid
    from gen.runtime.manifest import MANIFEST

    if (Path(run_path) / MANIFEST).is_file():
        return None
    rows = [np.stack([x[i], *(translated[s, t][i] for t in range(domains))])
            for s, x in enumerate(inputs) for i in range(min(GRID_INPUTS, len(x)))]
    path = Path(run_path) / "eval_translations.png"
    save_grid(path, np.concatenate(rows), nrow=domains + 1)
    return str(path)
