"""Statistical laws of the PFGM++ perturbation kernel and prior (REFERENCE 1)."""
import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from pfgmbench.physics import pfgmpp
from pfgmbench.physics.random import gamma


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.7, 1536.0])
def test_gamma_sampler_matches_gamma_law(alpha):
    g = torch.Generator().manual_seed(1)
    x = gamma(torch.full((20000,), alpha, dtype=torch.float64), g).numpy()
    assert st.kstest(x, st.gamma(alpha).cdf).pvalue > 1e-3


@pytest.mark.parametrize("N,D", [(2, 1), (64, 1), (64, 2), (64, 43), (64, 128), (3072, 2048), (3072, 3072000)])
def test_radius_ratio_follows_betaprime(N, D):
    """R^2 / r^2 ~ BetaPrime(N/2, D/2): KS test on the kernel's own draws."""
    g = torch.Generator().manual_seed(N + D)
    y = torch.zeros(20000, N)
    sigma = torch.full((20000,), 0.7)
    x = pfgmpp.perturb(y, sigma, D, g)
    ratio = (x.double().square().sum(1) / (0.7 ** 2 * D)).numpy()
    assert st.kstest(ratio, st.betaprime(N / 2, D / 2).cdf).pvalue > 1e-3


def test_huge_D_radii_are_not_collapsed():
    """No [1e-3, 1 - 1e-3] clipping: at D = 3,072,000 the radii still spread like sigma^2 chi^2_N."""
    g = torch.Generator().manual_seed(0)
    z = pfgmpp.radius_ratio_sq(20000, 3072, 3_072_000, g).numpy() * 3_072_000
    rel_var = z.var() / z.mean() ** 2
    assert abs(rel_var - (2 / 3072 + 2 / 3_072_000)) / (2 / 3072) < 0.05


def test_D_inf_is_gaussian_chi2():
    g = torch.Generator().manual_seed(3)
    x = pfgmpp.perturb(torch.zeros(20000, 16), torch.full((20000,), 2.0), math.inf, g)
    r2 = (x.double().square().sum(1) / 4.0).numpy()
    assert st.kstest(r2, st.chi2(16).cdf).pvalue > 1e-3


@pytest.mark.parametrize("N,D", [(64, 128), (64, 8), (3072, 2048)])
def test_mean_R2_identity(N, D):
    """E[R^2] = sigma^2 N D / (D - 2) for D > 2."""
    g = torch.Generator().manual_seed(5)
    s = 0.5
    R2 = (pfgmpp.radius_ratio_sq(200000, N, D, g) * s * s * D).numpy()
    expect = s * s * N * D / (D - 2)
    sem = R2.std() / math.sqrt(len(R2))
    assert abs(R2.mean() - expect) < 5 * sem


def test_kernel_direction_is_uniform():
    """The perturbation direction is isotropic: mean direction ~ 0, second moment ~ I/N."""
    g = torch.Generator().manual_seed(7)
    N = 8
    x = pfgmpp.perturb(torch.zeros(50000, N), torch.ones(50000), 32.0, g).double()
    u = x / x.norm(dim=1, keepdim=True)
    assert u.mean(0).abs().max() < 0.02
    cov = (u.T @ u / len(u)).numpy()
    assert np.abs(cov - np.eye(N) / N).max() < 0.01


@pytest.mark.parametrize("D", [4.0, 128.0, math.inf])
def test_prior_radial_law(D):
    """Prior radius at sigma_max: R^2 / (sigma_max^2 D) ~ BetaPrime(N/2, D/2); D = inf: chi^2_N."""
    g = torch.Generator().manual_seed(11)
    N = 64
    x0 = pfgmpp.prior((5000, 1, 8, 8), 80.0, D, g)
    assert x0.dtype == torch.float64
    r2 = x0.flatten(1).square().sum(1).numpy()
    if math.isinf(D):
        law, z = st.chi2(N), r2 / 80.0 ** 2
    else:
        law, z = st.betaprime(N / 2, D / 2), r2 / (80.0 ** 2 * D)
    assert st.kstest(z, law.cdf).pvalue > 1e-3


def test_posterior_weights_limits():
    """Finite-D posterior -> the Gaussian (D = inf) posterior as D grows."""
    g = torch.Generator().manual_seed(2)
    pts = torch.randn(5, 10, generator=g, dtype=torch.float64)
    x = torch.randn(3, 10, generator=g, dtype=torch.float64)
    s = torch.full((3,), 0.8, dtype=torch.float64)
    w_inf = pfgmpp.posterior_weights(x, pts, s, math.inf)
    w_big = pfgmpp.posterior_weights(x, pts, s, 1e9)
    w_small = pfgmpp.posterior_weights(x, pts, s, 4.0)
    assert torch.allclose(w_big, w_inf, atol=1e-6)
    assert not torch.allclose(w_small, w_inf, atol=1e-3)
    assert torch.allclose(w_small.sum(1), torch.ones(3, dtype=torch.float64))
