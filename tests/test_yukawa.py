"""The Yukawa (screened Poisson) family: its Bessel functions in log space, its Green's function
against the PDE, the Poisson limit, and its field against the closed form in three dimensions."""
import math

import mpmath
import numpy as np
import pytest
import torch

from pfgmbench.physics.pfgm import empirical_field
from pfgmbench.physics.yukawa import log_bessel_k, log_green, yukawa_field


@pytest.mark.parametrize("nu", [0.5, 1.5, 10.0, 49.5, 50.5, 200.0, 1536.0])
def test_log_bessel_k_matches_mpmath(nu):
    xs = [0.05, 1.0, 10.0, 300.0]
    got = log_bessel_k(nu, torch.tensor(xs, dtype=torch.float64)).numpy()
    want = np.array([float(mpmath.log(mpmath.besselk(nu, x))) for x in xs])
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("n,m", [(3, 1.0), (10, 0.5), (65, 2.0), (1001, 3.0)])
def test_green_function_solves_the_screened_poisson_equation(n, m):
    """Radially, away from the source: G'' + (n - 1)/r G' - m^2 G = 0. With u = ln G this reads
    u'' + u'^2 + (n - 1)/r u' - m^2 = 0, checked with central differences of u (well scaled at any n)."""
    for r0 in (0.7, 2.0, 5.0):
        h = 1e-3 * r0
        u = log_green(torch.tensor([r0 - h, r0, r0 + h], dtype=torch.float64), m, n)
        d1 = (u[2] - u[0]) / (2 * h)
        d2 = (u[2] - 2 * u[1] + u[0]) / h ** 2
        residual = d2 + d1 ** 2 + (n - 1) / r0 * d1 - m * m
        scale = abs(d2) + d1 ** 2 + abs((n - 1) / r0 * d1) + m * m
        assert abs(residual) / scale < 1e-5, (r0, float(residual), float(scale))


def test_small_mass_tends_to_the_poisson_green_function():
    r = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    for n in (3, 11, 101):
        lg = log_green(r, 1e-7, n)
        np.testing.assert_allclose((lg - lg[1]).numpy(), ((2 - n) * torch.log(r)).numpy(), atol=1e-6)


def test_field_at_zero_mass_is_pfgms():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(9, 6, generator=g, dtype=torch.float64)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64) * 2
    z = torch.tensor([0.1, 0.5, 2.0, 8.0], dtype=torch.float64)
    pf = empirical_field(x, z, pts, 5.0)
    np.testing.assert_allclose(yukawa_field(x, z, pts, 0.0, 5.0).numpy(), pf.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(yukawa_field(x, z, pts, 1e-6, 5.0).numpy(), pf.numpy(), rtol=1e-4, atol=1e-5)


def test_three_dimensional_field_matches_the_closed_form():
    """n = 3 (2-D data): phi_i = e^(-m r)/(4 pi r), E_i = ((x, z) - (p_i, 0)) (1 + m r) e^(-m r) / (4 pi r^3);
    the sampling field, toward the data, is (-E_x, -E_z - m phi), normalised by sum |E_i| / r_i."""
    m, gam = 0.8, 5.0
    pts = torch.tensor([[1.0, 0.0], [-0.5, 0.8], [-0.4, -0.9]], dtype=torch.float64)
    x = torch.tensor([[0.3, 0.2], [2.0, -1.0]], dtype=torch.float64)
    z = torch.tensor([0.4, 1.5], dtype=torch.float64)
    got = yukawa_field(x, z, pts, m, gam).numpy()
    for b in range(2):
        d = np.concatenate([x[b].numpy() - pts.numpy(), np.full((3, 1), z[b].item())], axis=1)
        r = np.linalg.norm(d, axis=1)
        Ei = d * ((1 + m * r) * np.exp(-m * r) / (4 * math.pi * r ** 3))[:, None]
        phi = (np.exp(-m * r) / (4 * math.pi * r)).sum()
        S = ((1 + m * r) * np.exp(-m * r) / (4 * math.pi * r ** 3)).sum()
        Et = -Ei.sum(0)
        Et[-1] -= m * phi
        Et /= S
        want = math.sqrt(2) * Et / (np.linalg.norm(Et) + gam)
        np.testing.assert_allclose(got[b], want, rtol=1e-10)
    assert (got[:, -1] < 0).all()     # toward the data plane


def test_high_dimensional_field_is_finite_and_points_to_the_nearest_source():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(32, 1024, generator=g, dtype=torch.float64)
    x = pts[:3] + 0.2 * torch.randn(3, 1024, generator=g, dtype=torch.float64)
    f = yukawa_field(x, torch.full((3,), 0.3, dtype=torch.float64), pts, 2.0, 5.0)
    assert torch.isfinite(f).all()
    toward = (pts[:3] - x) / (pts[:3] - x).norm(dim=1, keepdim=True)
    assert ((f[:, :-1] * toward).sum(1) / f[:, :-1].norm(dim=1) > 0.99).all()


def _yukawa(m, N, z_max=4.0, upper_norm=40.0):
    from pfgmbench.physics.yukawa import Yukawa

    pf = dict(Yukawa.defaults["pfgm"], M=200, z_max=z_max, upper_norm=upper_norm)
    return Yukawa({"physics": {"family": "yukawa", "m": m, "pfgm": pf}, "sample": {}}, (N,))


@pytest.mark.parametrize("N,m,z", [(2, 0.5, 4.0), (2, 2.0, 4.0), (5, 1.0, 3.0)])
def test_matching_prior_draws_the_screened_flows_density_at_z_max(N, m, z):
    """p = m phi - d_z phi of one source at height z, per unit R: R^(N-1) (m G + (z / r) |E|), written here
    directly with scipy's K_nu (normalised G = (m / r)^nu K_nu(m r), |E| = m^(nu+1) r^-nu K_(nu+1)(m r));
    the prior's radii follow it (Kolmogorov-Smirnov)."""
    from scipy import integrate, special, stats

    nu = (N + 1) / 2 - 1

    def density(R):
        r = math.hypot(R, z)
        G = (m / r) ** nu * special.kv(nu, m * r)
        E = m ** (nu + 1) * r ** -nu * special.kv(nu + 1, m * r)
        return R ** (N - 1) * (m * G + z / r * E)

    total = integrate.quad(density, 0, 40.0, limit=200)[0]
    cdf = np.vectorize(lambda R: integrate.quad(density, 0, min(R, 40.0), limit=200)[0] / total)
    state = _yukawa(m, N, z_max=z).prior((4000, N), torch.Generator().manual_seed(0))
    assert torch.allclose(state[:, N], torch.full((4000,), z, dtype=torch.float64))
    R = state[:, :N].norm(dim=1).numpy()
    assert stats.kstest(R, cdf).pvalue > 0.01


def test_prior_at_zero_mass_is_pfgms():
    from pfgmbench.physics.pfgm import PFGM

    y = _yukawa(0.0, 3)
    p = PFGM({"physics": {"family": "pfgm", "pfgm": dict(y.p)}, "sample": {}}, (3,))
    a, b = (f.prior((50, 3), torch.Generator().manual_seed(1)) for f in (y, p))
    assert torch.equal(a, b)


@pytest.mark.parametrize("N,m,z", [(2, 0.5, 0.3), (5, 2.0, 1.0), (64, 1.0, 2.0)])
def test_half_of_the_screened_density_is_the_m_phi_term_at_every_height(N, m, z):
    """Over a plane at height z, int m G dx = int -d_z G dx = e^(-m z) / 2 (G's Fourier transform 1 / (k^2 + m^2)
    at k_x = 0): the two parts of p = m phi - d_z phi always carry equal mass. So at z = 0+ half the flow's mass is
    m phi(x, 0), the data blurred by the plane's Green's function, and only the other half (-d_z phi = rho / 2) is
    the data: the exact flow returns the data in part only. Checked with log_green / log_field's common constant."""
    n = N + 1
    lnR = torch.linspace(math.log(1e-8), math.log(200.0 + 50 * N), 200001, dtype=torch.float64)
    R = lnR.exp()
    r = torch.sqrt(R * R + z * z)
    from pfgmbench.physics.yukawa import log_field

    def mass(log_f):   # int over R^N of f(|x|) dx, up to the sphere's area: int R^N f d(ln R)
        a = N * lnR + log_f
        return torch.logsumexp(a, 0)
    log_mphi = mass(math.log(m) + log_green(r, m, n))
    log_flux = mass(math.log(z) - torch.log(r) + log_field(r, m, n))
    assert abs(float(log_mphi - log_flux)) < 1e-3


def test_sampling_bound_keeps_the_exact_field_and_the_sign_of_a_learned_one():
    N = 4
    fam = _yukawa(0.7, N)
    g = torch.Generator().manual_seed(2)
    pts = torch.randn(20, N, generator=g, dtype=torch.float64)
    for z in (1e-3, 0.05, 1.0, 3.0):
        x = torch.randn(30, N, generator=g, dtype=torch.float64) * 2
        v = yukawa_field(x, torch.full((30,), z, dtype=torch.float64), pts, 0.7, 5.0)
        vx, vz = v[:, :N], v[:, N]
        assert torch.allclose(fam.sampling_vz(vx, vz, z), vz, rtol=1e-12, atol=0)
        assert (fam.sampling_vz(vx, -vz, z) < 0).all()      # a learned z component that crossed zero
