"""The feature classifier `gen eval` scores with: a small CNN trained on a run's own labelled
training split (no Inception weights ship offline), cached per dataset fingerprint. Its features
give fd_<data>, its probabilities is_<data> and label accuracy (gen.trainkit.eval.evaluate,
gen.trainkit.eval.translation)."""

from __future__ import annotations

import numpy as np

from gen.cache import cache_dir
from gen.errors import GenError
from gen.fileio import load_safetensors, save_safetensors
from gen.trainkit.data import Dataset

CLASSIFIER_VERSION = 2
CLASSIFIER_EPOCHS = 30


def train_classifier(data: Dataset, seed: int = 0, epochs: int = CLASSIFIER_EPOCHS):
    """Fit the feature classifier on the training split; returns (model, held-out accuracy)."""
    import torch
    import torch.nn.functional as F

    from gen.nets.classifier import FeatureClassifier

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = FeatureClassifier(data.channels, data.num_classes)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=g).split(128):
            # One-pixel random shifts: cheap augmentation that makes features less brittle.
            dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
            xb = torch.roll(x[idx], shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), _accuracy(model, data.test_x, data.test_y)


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    _, probs = embed(model, x)
    return float((probs.argmax(1) == y).mean())


def load_or_train_classifier(data: Dataset, progress=lambda message: None, seed: int = 0):
    """The cached classifier for this dataset, trained (seconds on digits) on first use. Another `seed`
    gives another network of the same data (a training loss that must not be the metric's own)."""
    from gen.nets.classifier import FeatureClassifier

    seeded = f"-seed{seed}" if seed else ""
    path = cache_dir() / f"classifier-{data.name}-{data.fingerprint()}{seeded}-v{CLASSIFIER_VERSION}.safetensors"
    if path.is_file():
        try:
            tensors, meta = load_safetensors(path)
            model = FeatureClassifier(data.channels, data.num_classes)
            model.load_state_dict(tensors)
            return model.eval(), float(meta["held_out_accuracy"]), path
        except (GenError, RuntimeError, KeyError):
            pass  # a damaged cache entry is rebuilt, never trusted
    progress(f"  training the metric classifier on {data.name} once (cached in {cache_dir()}) ...")
    model, acc = train_classifier(data, seed)
    save_safetensors(path, model.state_dict(), {"held_out_accuracy": repr(acc), "dataset": data.name})
    return model, acc, path


def embed(model, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Features (float64) and class probabilities for NCHW images in [-1, 1]."""
    import torch

    feats, probs = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch], dtype=np.float32))
            f = model.features(x)
            feats.append(f.double().numpy())
            probs.append(torch.softmax(model.head(f), dim=1).double().numpy())
    return np.concatenate(feats), np.concatenate(probs)
