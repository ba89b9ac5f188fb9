"""The feature network of srgan's perceptual loss: a local safetensors file when given (`--features`),
else gen's own photo classifier (gen.nets.classifier) trained on the run's training targets.

A file is read by its keys, never unpickled: torchvision's VGG layout (`features.N.weight`, 3x3 convs
with a ReLU after each and a max-pool wherever the index skips one more; inputs normalised to
ImageNet's statistics) gives the maps before each of its first three pools (VGG's relu1_2, relu2_2,
relu3_x), small crops having little left after that; gen's FeatureClassifier layout (`body.N.weight`,
`head.weight`) gives the outputs of its four conv blocks. Unverified with real VGG weights: none ship
offline; tests build one of that layout.

The default network is trained with seed 1, so the loss is not the network `gen eval`'s feature
distance (seed 0) scores with: a lower FD then means features closer in general, not the metric gamed.
"""

from __future__ import annotations

import torch
from torch import nn

from gen.errors import GenError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VGG_STAGES = 3


class Taps(nn.Module):
    """`features(x)`: the outputs of `stages`, each fed the last; frozen."""

    def __init__(self, stages: list[nn.Module], mean=None, std=None):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.mean = None if mean is None else torch.tensor(mean).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std).view(1, -1, 1, 1)
        self.eval().requires_grad_(False)

    def forward(self, x):
        if self.mean is not None:  # [-1, 1] -> [0, 1] -> ImageNet-normalised
            x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


def classifier_taps(model) -> Taps:
    """A FeatureClassifier's four conv blocks (conv, BN, ReLU each), the pooling head left out."""
    return Taps(model.blocks())


def default_features(data, progress=print) -> Taps:
    """gen's photo classifier of the training targets, trained once with seed 1 and cached."""
    from gen.trainkit.data import Dataset
    from gen.trainkit.eval.classifier import load_or_train_classifier

    k = data.input_channels
    if data.num_classes < 2:
        raise GenError(f"--loss perceptual: {data.name} has no labels to train gen's feature network on; pass "
                       "--features FILE (a safetensors feature network)")
    targets = Dataset(f"{data.name}-targets", data.train_x[:, k:], data.train_y, data.test_x[:, k:], data.test_y,
                      data.class_names)
    model, _, _ = load_or_train_classifier(targets, progress, seed=1)
    return classifier_taps(model)


def load_features(path: str, channels: int) -> Taps:
    from gen.fileio import load_safetensors

    tensors, _ = load_safetensors(path)
    if any(k.startswith("features.") for k in tensors):
        taps = _vgg(tensors, path)
    elif "head.weight" in tensors and any(k.startswith("body.") for k in tensors):
        from gen.nets.classifier import FeatureClassifier

        model = FeatureClassifier(tensors["body.0.weight"].shape[1], tensors["head.weight"].shape[0])
        try:
            model.load_state_dict(tensors)
        except RuntimeError as e:
            raise GenError(f"--features {path}: not gen's FeatureClassifier ({str(e).splitlines()[0]})") from None
        taps = classifier_taps(model.eval())
    else:
        raise GenError(f"--features {path}: unknown layout (keys like {', '.join(sorted(tensors)[:3])}); give torchvision "
                       "VGG weights (features.N.weight / .bias) or gen's FeatureClassifier, as safetensors")
    first = next(m for m in taps.modules() if isinstance(m, nn.Conv2d))
    if first.in_channels != channels:
        raise GenError(f"--features {path} reads {first.in_channels}-channel images; this run's are {channels}-channel")
    return taps


def _vgg(tensors: dict, path) -> Taps:
    """torchvision VGG `features` from its conv indices: conv, ReLU (+1), and a max-pool where the next
    conv is 3 indices on instead of 2."""
    idx = sorted({int(k.split(".")[1]) for k in tensors if k.startswith("features.") and k.endswith(".weight")})
    if not idx or any(tensors[f"features.{i}.weight"].ndim != 4 or f"features.{i}.bias" not in tensors for i in idx):
        raise GenError(f"--features {path}: VGG layout needs conv weights and biases features.N.weight / .bias")
    stages, layers = [], []
    for i, nxt in zip(idx, idx[1:] + [None]):
        w = tensors[f"features.{i}.weight"]
        conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=w.shape[2] // 2)
        conv.weight.data.copy_(w), conv.bias.data.copy_(tensors[f"features.{i}.bias"])
        layers += [conv, nn.ReLU()]
        if nxt is None or nxt - i > 2:  # a pool follows: the stage ends here
            stages.append(nn.Sequential(*([nn.MaxPool2d(2)] if stages else []), *layers))
            layers = []
            if len(stages) == VGG_STAGES:
                break
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if tensors[f"features.{idx[0]}.weight"].shape[1] == 3 else (None, None)
    return Taps(stages, mean, std)
