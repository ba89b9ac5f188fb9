"""GAN and VAE maths against closed forms."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from gen.trainkit.families.gan.trainer import discriminator_loss, feature_matching, generator_loss, gradient_penalty
from gen.nets.gan import Discriminator, Generator
from gen.nets.vae import VAE, gaussian_kl


def test_gradient_penalty_on_a_linear_critic():
    # D(x) = <w, x>: the gradient is w everywhere, so the penalty is (||w|| - 1)^2 exactly.
    w = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 1, 2, 2)
    critic = lambda x, _labels: (x * w).flatten(1).sum(1)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(8, 1, 2, 2, generator=g), torch.randn(8, 1, 2, 2, generator=g)
    gp = gradient_penalty(critic, real, fake, None, torch.rand(8, 1, 1, 1, generator=g))
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)


def test_feature_matching_is_zero_on_the_real_batch_and_pulls_only_the_generated_side():
    torch.manual_seed(0)
    D = Discriminator(8, 1, width=4, num_classes=0, norm="none")
    real = torch.rand(16, 1, 8, 8) * 2 - 1
    assert feature_matching(D, real, D.features(real)).item() == 0.0
    fake = (torch.rand(16, 1, 8, 8) * 2 - 1).requires_grad_(True)
    loss = feature_matching(D, real, D.features(fake))
    expected = (D.features(real).mean(0) - D.features(fake).mean(0)).pow(2).sum()
    assert loss.item() > 0 and math.isclose(loss.item(), expected.item(), rel_tol=1e-6)
    loss.backward()
    assert fake.grad.abs().sum() > 0
    assert torch.equal(D(real), D.score(D.features(real)))  # forward is features then score


def test_gan_losses_at_known_logits():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    assert discriminator_loss("bce", real, fake).item() == pytest.approx(math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)))
    assert generator_loss("bce", fake).item() == pytest.approx(math.log1p(math.exp(1)))
    assert discriminator_loss("lsgan", real, fake).item() == pytest.approx(0.5 * (1 + 1))
    assert discriminator_loss("wgan-gp", real, fake).item() == pytest.approx(-3.0)
    assert discriminator_loss("hinge", torch.tensor([0.5]), torch.tensor([-0.25])).item() == pytest.approx(0.5 + 0.75)
    assert generator_loss("hinge", fake).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown GAN loss 'nope'"):
        discriminator_loss("nope", real, fake)


@pytest.mark.parametrize("size", [8, 16, 32])
@pytest.mark.parametrize("norm", ["batch", "none", "spectral"])
def test_gan_nets_scale_to_image_size(size, norm):
    G, D = Generator(size, 3, num_classes=10), Discriminator(size, 3, num_classes=10, norm=norm)
    labels = torch.arange(4)
    x = G(torch.randn(4, 64), labels)
    assert x.shape == (4, 3, size, size) and x.abs().max() <= 1.0
    assert D(x, labels).shape == (4,)


def test_gan_rejects_sizes_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power of two >= 8, got 12"):
        Generator(12, 1)


def test_vae_kl_matches_closed_form_and_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 16, generator=g), torch.randn(5, 16, generator=g)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0


def test_vae_shapes():
    vae = VAE(16, 3, latent_dim=8)
    mu, logvar = vae.encode(torch.randn(2, 3, 16, 16))
    assert mu.shape == logvar.shape == (2, 8)
    assert vae.decode(mu).shape == (2, 3, 16, 16)


def test_gan_trains_with_feature_matching_and_resumes_bit_identically(tmp_path):
    import json

    from gen.fileio import load_safetensors
    from gen.trainkit.train import train

    opts = {"feature_matching": True, "conditional": True, "width": 8, "z_dim": 8, "batch_size": 8, "log_every": 2,
            "sample_every": 100, "checkpoint_every": 2}
    whole = train("gan", "digits", str(tmp_path / "whole"), {**opts, "steps": 4}, progress=False)
    half = train("gan", "digits", str(tmp_path / "half"), {**opts, "steps": 2}, progress=False)
    resumed = train("gan", "digits", str(half.path), {"steps": 4}, resume=True, progress=False)
    a, _ = load_safetensors(whole.state_path)
    b, _ = load_safetensors(resumed.state_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logged = [json.loads(line) for line in (whole.path / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["feature_matching"]) and r["feature_matching"] > 0 for r in logged)
