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
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise GenError(f"--inception {path} is not a loadable ONNX model: {str(e).splitlines()[0]}") from None


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
