import numpy as np
import pytest
from scipy import linalg

from gen.trainkit.eval.metrics import frechet_distance, frechet_distance_of, inception_style_score, precision_recall


def test_frechet_distance_matches_the_sqrtm_formula_on_non_commuting_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    s1, s2 = a @ a.T + np.eye(6), b @ b.T + 0.5 * np.eye(6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_samples_from_known_gaussians():
    # N(m1, diag(s1^2)) vs N(m2, diag(s2^2)): FD = |m1 - m2|^2 + sum (s1 - s2)^2
    rng = np.random.default_rng(0)
    m1, m2 = np.zeros(4), np.array([1.0, 0.0, 2.0, 0.0])
    s1, s2 = np.ones(4), np.array([1.0, 2.0, 1.0, 3.0])
    a = m1 + s1 * rng.standard_normal((200_000, 4))
    b = m2 + s2 * rng.standard_normal((200_000, 4))
    assert frechet_distance_of(a, b) == pytest.approx(5.0 + 1.0 + 4.0, rel=0.01)
    assert frechet_distance_of(a, a) == pytest.approx(0.0, abs=1e-6)


def test_inception_style_score_bounds():
    k = 10
    assert inception_style_score(np.full((100, k), 1 / k)) == pytest.approx(1.0)
    assert inception_style_score(np.eye(k)[np.arange(100) % k]) == pytest.approx(k, rel=1e-6)
    assert inception_style_score(np.eye(k)[np.zeros(100, int)]) == pytest.approx(1.0, rel=1e-6)


def test_precision_recall_identical_disjoint_and_mode_collapse():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((400, 8))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    p, r = precision_recall(real, real + 100.0)
    assert p == 0.0 and r == 0.0
    collapsed = real[:1] + 0.01 * rng.standard_normal((400, 8))  # every fake near one real point
    p, r = precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.1
