"""Sample-quality statistics on feature vectors, in float64 (numpy only, so they are easy to pin).

- Fréchet distance (Heusel et al. 2017) between Gaussians fitted to two feature sets.
- Inception-style score exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016) from class probabilities.
- k-NN precision and recall (Kynkäänniemi et al. 2019).
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need an (N >= 2, D) feature array, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    Tr((S1 S2)^(1/2)) is the sum of square roots of the eigenvalues of S1 S2, which are real and
    non-negative for covariance matrices; taking them directly avoids sqrtm's complex round-off.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    eig = np.linalg.eigvals(s1 @ s2)
    tr_covmean = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def frechet_distance_of(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def inception_style_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    p = np.asarray(probs, dtype=np.float64)
    marginal = p.mean(axis=0, keepdims=True)
    kl = (p * (np.log(p + eps) - np.log(marginal + eps))).sum(axis=1)
    return float(np.exp(kl.mean()))


def _pairwise_dist(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> np.ndarray:
    b2 = (b * b).sum(1)
    rows = []
    for i in range(0, len(a), chunk):
        x = a[i : i + chunk]
        d2 = (x * x).sum(1)[:, None] + b2[None, :] - 2.0 * x @ b.T
        rows.append(np.sqrt(np.clip(d2, 0.0, None)))
    return np.concatenate(rows)


def _knn_radii(f: np.ndarray, k: int) -> np.ndarray:
    d = _pairwise_dist(f, f)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def _coverage(radii_set: np.ndarray, radii: np.ndarray, queries: np.ndarray) -> float:
    """Fraction of `queries` inside at least one k-NN ball around the points of `radii_set`."""
    d = _pairwise_dist(queries, radii_set)
    return float((d <= radii[None, :]).any(axis=1).mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Precision: fakes inside the real manifold; recall: reals inside the fake manifold."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    precision = _coverage(real, _knn_radii(real, k), fake)
    recall = _coverage(fake, _knn_radii(fake, k), real)
    return precision, recall
