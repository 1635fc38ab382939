"""Yukawa (screened Poisson) generative model, the GenPhys paper's proposal (REFERENCE 6):
the data on the z = 0 plane of R^n, n = N + 1, as sources of the screened Poisson equation
lap phi - m^2 phi = -rho. Its Green's function and field, with nu = n/2 - 1:

    G(r) = c (m/r)^nu K_nu(m r),          E(r) = -G'(r) r_hat = c m^(nu+1) r^(-nu) K_(nu+1)(m r) r_hat,

and m -> 0 gives the Poisson case G ∝ r^(2-n), |E| ∝ r^(1-n) (original PFGM). As a density flow,
p = m phi - d_z phi obeys dp/dz + div_x(p v) = R with the death term R = -m p (uniform in x), so the
samples follow dx/dz = E_x / (E_z + m phi): the field with m phi added to its z component.

Bessel functions of order ~N/2 overflow float64 at once (N = 3072: K_1536), so everything is in
log space: scipy's scaled kve for moderate orders, the uniform asymptotic (Debye) expansion beyond.
"""
import math

import numpy as np
import torch

from pfgmbench.errors import UserError
from pfgmbench.physics.pfgm import PFGM

DEBYE_ORDER = 50.0      # above this order, log K_nu from the uniform asymptotic expansion


def log_bessel_k(nu, x):
    """log K_nu(x) elementwise (x > 0, nu >= 0), float64 tensor in, float64 tensor out."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if nu < DEBYE_ORDER:
        from scipy.special import gammaln, kve

        xn = x.cpu().numpy()
        k = kve(nu, xn)          # K_nu(x) e^x
        with np.errstate(divide="ignore", over="ignore"):
            out = np.log(k) - xn
            # small x: K_nu(x) ~ Gamma(nu) 2^(nu-1) x^(-nu) (nu > 0), where kve overflows
            small = gammaln(nu) + (nu - 1) * math.log(2) - nu * np.log(xn) if nu > 0 else -np.log(xn)
        out = np.where(np.isfinite(out), out, small)
        return torch.as_tensor(out, dtype=torch.float64, device=x.device)
    # K_nu(nu z) ~ sqrt(pi / (2 nu)) e^(-nu eta) (1 + z^2)^(-1/4) (1 - u1(t)/nu + u2(t)/nu^2),
    # eta = sqrt(1 + z^2) + ln(z / (1 + sqrt(1 + z^2))), t = 1 / sqrt(1 + z^2)   (Abramowitz & Stegun 9.7.8)
    z = x / nu
    sq = torch.sqrt(1 + z * z)
    eta = sq + torch.log(z / (1 + sq))
    t = 1 / sq
    u1 = (3 * t - 5 * t ** 3) / 24
    u2 = (81 * t ** 2 - 462 * t ** 4 + 385 * t ** 6) / 1152
    return (0.5 * math.log(math.pi / (2 * nu)) - nu * eta - 0.25 * torch.log1p(z * z)
            + torch.log(1 - u1 / nu + u2 / nu ** 2))


def log_green(r, m, n):
    """log G(r) in n dimensions, up to the constant c: nu ln(m / r) + ln K_nu(m r); m = 0: (2 - n) ln r."""
    r = torch.as_tensor(r, dtype=torch.float64)
    nu = n / 2 - 1
    if m == 0:
        return (2 - n) * torch.log(r)
    return nu * math.log(m) - nu * torch.log(r) + log_bessel_k(nu, m * r)


def log_field(r, m, n):
    """log |E(r)| in n dimensions, same constant c as log_green: ln(m^(nu+1) r^(-nu) K_(nu+1)(m r));
    m = 0: (1 - n) ln r (the m -> 0 limit of m^(nu+1) K_(nu+1)(m r) r^(-nu) up to a constant)."""
    r = torch.as_tensor(r, dtype=torch.float64)
    nu = n / 2 - 1
    if m == 0:
        return (1 - n) * torch.log(r)
    return (nu + 1) * math.log(m) - nu * torch.log(r) + log_bessel_k(nu + 1, m * r)


def yukawa_field(x, z, points, m, gamma_):
    """The normalised sampling field of point sources at (points, 0) seen from (x, z), pointing toward
    the data: E~ = (E_x, E_z - m phi) with E = sum_i |E_i| ((p_i, 0) - (x, z)) / r_i and
    phi = sum_i G(r_i), both divided by sum_i |E_i| / r_i (log space), then
    target = sqrt(N) E~ / (|E~| + gamma). m = 0 is exactly PFGM's empirical field. Returns (B, N + 1)."""
    x, z, p = x.to(torch.float64), z.to(torch.float64), points.to(torch.float64)
    N = x.shape[1]
    n = N + 1
    r = torch.sqrt(torch.cdist(x, p).square() + z[:, None] ** 2).clamp_min(1e-300)
    log_w = log_field(r, m, n) - torch.log(r)            # |E_i| / r_i: the weight of (p_i - x, -z)
    norm = torch.logsumexp(log_w, dim=1, keepdim=True)
    w = torch.exp(log_w - norm)
    E = torch.cat([w @ p - w.sum(1, keepdim=True) * x, -(w.sum(1) * z)[:, None]], dim=1)
    if m > 0:
        phi = torch.exp(log_green(r, m, n) - norm).sum(1)
        E[:, -1] = E[:, -1] - m * phi
    return math.sqrt(N) * E / (E.norm(dim=1, keepdim=True) + gamma_)


class Yukawa(PFGM):
    """PFGM's machinery (perturbation, large-batch target, hemisphere prior, ln z ODE) with the
    screened field above: dx/dz = E_x / (E_z + m phi). The prior is PFGM's (exact for m = 0; for
    m > 0 an approximation, good when m z_max is small). The knob is m (identity proxy mapping)."""
    name = "yukawa"
    knob_names = ("m",)
    defaults = {"m": 0.0, "pfgm": {**PFGM.defaults["pfgm"], "z_exp": 0.0}}

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        if not float(cfg["physics"]["m"]) >= 0:
            raise UserError(f"physics.m (the Yukawa screening mass) must be >= 0, got {cfg['physics']['m']}")

    def label(self, sampler=None):
        return "Yukawa"

    def field(self, x, z, points):
        return yukawa_field(x, z, points, float(self.physics["m"]), self.p["gamma"])
