"""PFGM++ (REFERENCE 1): finite-D perturbation kernel, prior, exact empirical posterior.

D = inf is EDM. Everything radial is drawn in float64; beta is never clipped to
[1e-3, 1 - 1e-3] (that makes every radius equal at D = 3,072,000), only kept off exact 0.
"""
import math

import torch

from pfgmbench.physics.random import gamma


def is_edm(D):
    return math.isinf(D)


def radius_ratio_sq(batch, N, D, generator=None, device="cpu"):
    """R^2 / r^2 = beta / (1 - beta) with beta ~ Beta(N/2, D/2), i.e. BetaPrime(N/2, D/2). float64."""
    g_a = gamma(torch.full((batch,), N / 2, dtype=torch.float64, device=device), generator)
    g_b = gamma(torch.full((batch,), D / 2, dtype=torch.float64, device=device), generator)
    return g_a / g_b.clamp_min(torch.finfo(torch.float64).tiny)


def uniform_direction(shape, generator=None, device="cpu", dtype=torch.float64):
    """Unit vectors uniform on the sphere S^(N-1), one per row: a normalised Gaussian."""
    u = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    return u / u.flatten(1).norm(dim=1).reshape(-1, *([1] * (len(shape) - 1)))


def perturb(y, sigma, D, generator=None):
    """x = y + R u with R = r sqrt(beta/(1-beta)), r = sigma sqrt(D)   (PFGM++ eq. training kernel).

    D = inf: x = y + sigma n, n ~ N(0, I) (EDM).  `sigma` has shape (B,).
    """
    B = y.shape[0]
    view = (B,) + (1,) * (y.dim() - 1)
    if is_edm(D):
        n = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return y + sigma.reshape(view) * n
    N = y[0].numel()
    r = sigma.to(torch.float64) * math.sqrt(D)
    R = r * radius_ratio_sq(B, N, D, generator, y.device).sqrt()
    u = uniform_direction(y.shape, generator, y.device)
    return y + (R.reshape(view) * u).to(y.dtype)


def draw_sigma(batch, P_mean, P_std, generator=None, device="cpu"):
    """ln sigma ~ N(P_mean, P_std^2) (EDM training distribution)."""
    n = torch.randn(batch, generator=generator, device=device)
    return (P_mean + P_std * n).exp()


def prior(shape, sigma_max, D, generator=None, device="cpu"):
    """Start of sampling, float64: x0 = R u with r_max = sigma_max sqrt(D); D = inf: sigma_max n."""
    if is_edm(D):
        return sigma_max * torch.randn(shape, generator=generator, device=device, dtype=torch.float64)
    N = math.prod(shape[1:])
    r_max = sigma_max * math.sqrt(D)
    R = r_max * radius_ratio_sq(shape[0], N, D, generator, device).sqrt()
    return R.reshape(-1, *([1] * (len(shape) - 1))) * uniform_direction(shape, generator, device)


def posterior_weights(x, points, sigma, D):
    """p(y_i | x) for the empirical data set {y_i}: (||x - y_i||^2 + r^2)^(-(N+D)/2), normalised.

    D = inf: softmax of -||x - y_i||^2 / (2 sigma^2). x: (B, ...), points: (M, ...), sigma: (B,).
    """
    xf = x.flatten(1).to(torch.float64)
    pf = points.flatten(1).to(torch.float64)
    d2 = torch.cdist(xf, pf).square()
    s = sigma.to(torch.float64).reshape(-1, 1)
    if is_edm(D):
        logits = -d2 / (2 * s * s)
    else:
        N = pf.shape[1]
        logits = -(N + D) / 2 * torch.log(d2 + s * s * D)
    return torch.softmax(logits, dim=1)


def exact_denoiser(points, D):
    """D*(x; sigma) = sum_i p(y_i | x) y_i: the optimal denoiser for a finite data set."""
    pf = points.flatten(1).to(torch.float64)

    def denoise(x, sigma, class_labels=None):
        w = posterior_weights(x, points, sigma, D)
        return (w @ pf).reshape(x.shape).to(x.dtype)

    return denoise
