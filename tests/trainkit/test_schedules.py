"""The DDPM forward process against its closed forms (Ho et al. 2020; Nichol & Dhariwal 2021)."""

import math

import numpy as np
import pytest
import torch

from gen.trainkit.families.ddpm import DdpmConfig
from gen.trainkit.families.ddpm.trainer import noise_scheduler


def _config(**kw):
    return {**DdpmConfig.defaults(), **kw}


def test_linear_schedule_closed_form():
    s = noise_scheduler(_config(schedule="linear"))
    betas = np.linspace(1e-4, 0.02, 1000)
    np.testing.assert_allclose(s.betas.double().numpy(), betas, rtol=1e-5)
    np.testing.assert_allclose(s.alphas_cumprod.double().numpy(), np.cumprod(1 - betas), rtol=1e-4)


def test_cosine_schedule_closed_form():
    s = noise_scheduler(_config(schedule="cosine"))
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(1000)])
    np.testing.assert_allclose(s.betas.double().numpy(), betas, rtol=1e-4, atol=1e-7)
    alpha_bar = np.cumprod(1 - betas)
    np.testing.assert_allclose(s.alphas_cumprod.double().numpy()[:990], alpha_bar[:990], rtol=1e-3)


@pytest.mark.parametrize("t", [10, 500, 990])
def test_q_xt_given_x0_statistics(t):
    s = noise_scheduler(_config())
    ab = float(s.alphas_cumprod[t])
    x0 = torch.full((200_000,), 0.7)
    g = torch.Generator().manual_seed(0)
    xt = s.add_noise(x0, torch.randn(x0.shape, generator=g), torch.full((len(x0),), t))
    assert abs(xt.mean().item() - math.sqrt(ab) * 0.7) < 0.01
    assert abs(xt.var().item() - (1 - ab)) < 0.01


def test_v_target_and_x0_recovery():
    s = noise_scheduler(_config(prediction="v"))
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([0, 100, 500, 999])
    ab = s.alphas_cumprod[t].view(-1, 1, 1, 1)
    v = s.get_velocity(x0, eps, t)
    torch.testing.assert_close(v, ab.sqrt() * eps - (1 - ab).sqrt() * x0)
    xt = s.add_noise(x0, eps, t)
    torch.testing.assert_close(ab.sqrt() * xt - (1 - ab).sqrt() * v, x0, atol=1e-5, rtol=1e-5)
