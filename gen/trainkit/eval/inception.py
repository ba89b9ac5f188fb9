"""Inception-v3 features for a real FID, from local weights exported to ONNX.

gen ships no Inception weights (none are installable offline) and does not load pickled ones. Export
the FID Inception network (e.g. pytorch-fid's `FID_Inception` pool3 output) once to ONNX with one
input (N, 3, 299, 299) float32 in [-1, 1] and one output (N, 2048) or (N, 2048, 1, 1).

Not verified against real Inception weights: none can be obtained on the machines this was built on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gen.errors import GenError


def inception_session(onnx_path: str):
    """The feature network's ORT session, opened before any sampling so that a bad file costs nothing."""
    import onnxruntime as ort

    path = Path(onnx_path)
    if not path.is_file():
        raise GenError(f"--inception {path}: file not found (an ONNX Inception-v3 feature network)")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise GenError(f"--inception {path} is not a loadable ONNX model: {str(e).splitlines()[0]}") from None
    _check_signature(session, path)
    return session


NEEDS = "one input, float32 images (N, 3, 299, 299) in [-1, 1], and features (N, 2048) or (N, 2048, 1, 1) out"


def _check_signature(session, path) -> None:
    """The network takes a batch of 299x299 RGB float images and gives 2048 features each; said by
    name before any sampling, instead of an ORT error after it."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    fixed = lambda dim, size: not isinstance(dim, int) or dim == size  # a named (dynamic) axis takes any size
    if len(inputs) != 1:
        raise GenError(f"--inception {path} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                       f"the feature network needs {NEEDS}")
    (inp,) = inputs
    shape = list(inp.shape)
    if inp.type != "tensor(float)" or len(shape) != 4 or not all(fixed(d, s) for d, s in zip(shape[1:], (3, 299, 299))):
        raise GenError(f"--inception {path}: its input {inp.name!r} is {inp.type} {shape}, not an image batch; the "
                       f"feature network needs {NEEDS}")
    out = list(outputs[0].shape) if outputs else []
    if not out or not fixed(out[1] if len(out) > 1 else None, 2048) or len(out) not in (2, 4):
        raise GenError(f"--inception {path}: its output is {out}, not 2048 features per image; the feature network "
                       f"needs {NEEDS}")


def inception_features(network, images: np.ndarray, batch: int = 50) -> np.ndarray:
    """`network`: an ONNX file or the session inception_session opened."""
    import torch
    import torch.nn.functional as F

    session = inception_session(network) if isinstance(network, (str, Path)) else network
    inp = session.get_inputs()[0]
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch], dtype=np.float32))
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        (f,) = session.run(None, {inp.name: x.numpy()})[:1]
        out.append(f.reshape(len(f), -1).astype(np.float64))
    return np.concatenate(out)
