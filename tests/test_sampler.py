"""Samplers against exact denoisers: known distributions must come back."""
import math

import numpy as np
import pytest
import torch

from pfgmbench.generate import generate as generate_family
from pfgmbench.physics import pfgmpp
from pfgmbench.physics.pfgmpp import PFGMPP, edm_sigma_steps
from pfgmbench.solvers import heun


def family(D, shape):
    cfg = {"physics": {"family": "pfgmpp", "D": D, "P_mean": -1.2, "P_std": 1.2, "sigma_data": 0.5},
           "sample": {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}}
    return PFGMPP(cfg, shape)


def generate(denoise, seeds, shape, D, steps, alpha=0.0, sampler="heun"):
    """EDM's Heun sampler from the PFGM++ prior, over a denoiser(x, sigma, labels)."""
    return generate_family(family(D, shape), denoise, seeds, steps, sampler, alpha=alpha)


def test_sigma_steps_endpoints_and_formula():
    t = edm_sigma_steps(18, 0.002, 80, 7)
    assert len(t) == 19 and t[-1] == 0
    assert t[0].item() == pytest.approx(80) and t[-2].item() == pytest.approx(0.002)
    assert torch.all(t[1:] < t[:-1])
    i = 5
    expect = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert t[i].item() == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("T", [2, 18, 40])
def test_nfe_is_2T_minus_1(T):
    _, _, nfe = generate(lambda x, s, c=None: 0 * x, [0, 1], (4,), math.inf, T)
    assert nfe == 2 * T - 1


def test_gaussian_data_recovered_at_256_steps():
    """Exact denoiser of N(0, s^2 I) at D = inf: D(x; t) = s^2 / (s^2 + t^2) x. Std within 1% of s."""
    s = 0.5
    denoise = lambda x, t, c=None: x * (s * s / (s * s + t * t)).reshape(-1, 1)  # noqa: E731
    x, _, nfe = generate(denoise, list(range(4000)), (64,), math.inf, 256)
    assert nfe == 511
    assert abs(x.std().item() / s - 1) < 0.01
    assert abs(x.mean().item()) < 0.01


@pytest.mark.parametrize("D", [2.0, 16.0, 128.0, math.inf])
def test_exact_posterior_samples_land_on_the_set(D):
    """With the exact empirical denoiser the ODE maps the prior onto the data points, all of them."""
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(4, 16, generator=g, dtype=torch.float64)
    denoise = pfgmpp.exact_denoiser(pts, D)
    x, _, _ = generate(denoise, list(range(400)), (16,), D, 32)
    d = torch.cdist(x, pts)
    assert d.min(1).values.max() < 1e-3
    counts = np.bincount(d.argmin(1).numpy(), minlength=4)
    # each point is hit with probability 1/4: 400 draws -> 100 +- 8.7; allow 5 sigma
    assert np.all(np.abs(counts - 100) < 5 * math.sqrt(400 * 0.25 * 0.75)), counts


@pytest.mark.parametrize("D", [64.0, math.inf])
def test_samples_do_not_depend_on_batching(D):
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(6, 8, generator=g, dtype=torch.float64)
    denoise = pfgmpp.exact_denoiser(pts, D)
    full, _, _ = generate(denoise, list(range(10)), (8,), D, 10)
    part, _, _ = generate(denoise, [3, 4, 5], (8,), D, 10)
    assert torch.equal(full[3:6], part)
    again, _, _ = generate(denoise, list(range(10)), (8,), D, 10)
    assert torch.equal(full, again)


def test_alpha_zero_is_the_plain_sampler_and_alpha_is_reproducible():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(6, 8, generator=g, dtype=torch.float64)
    denoise = pfgmpp.exact_denoiser(pts, 64.0)
    plain, _, _ = generate(denoise, list(range(8)), (8,), 64.0, 10)
    zero, _, _ = generate(denoise, list(range(8)), (8,), 64.0, 10, alpha=0.0)
    assert torch.equal(plain, zero)
    a1, _, _ = generate(denoise, list(range(8)), (8,), 64.0, 10, alpha=0.2)
    a2, _, _ = generate(denoise, [4, 5, 6, 7], (8,), 64.0, 10, alpha=0.2)
    assert torch.equal(a1[4:], a2) and not torch.equal(a1, plain)


def test_heun_is_exact_for_linear_denoiser_direction():
    """A denoiser returning 0 gives d = x / t: the ODE x(t) = x0 t / t0 ends exactly at 0."""
    x0 = torch.ones(2, 3, dtype=torch.float64) * 80
    v = family(math.inf, (3,)).velocity(lambda x, t: torch.zeros_like(x))
    x = heun(v, edm_sigma_steps(10), x0)
    assert torch.allclose(x, torch.zeros_like(x), atol=1e-12)
