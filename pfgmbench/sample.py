"""Samplers over one denoiser interface, per-seed generators, NFE counting (REFERENCE 1, 2).

A denoiser is any callable D(x, sigma, class_labels) -> estimate of the clean data.
Samplers never ask which model family produced it.
"""
import torch

from pfgmbench.physics import pfgmpp


class SeedGenerators:
    """One CPU torch.Generator per seed: a seed's sample never depends on batch size or device."""

    def __init__(self, seeds):
        self.gens = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def randn(self, shape, device="cpu"):
        return torch.stack([torch.randn(shape, generator=g, dtype=torch.float64) for g in self.gens]).to(device)

    def randint(self, high, device="cpu"):
        return torch.stack([torch.randint(high, (), generator=g) for g in self.gens]).to(device)

    def prior(self, shape, sigma_max, D, device="cpu"):
        return torch.cat([pfgmpp.prior((1, *shape), sigma_max, D, generator=g) for g in self.gens]).to(device)


class CountingDenoiser:
    """Wraps a denoiser and counts network evaluations per sample (NFE)."""

    def __init__(self, denoise):
        self.denoise, self.nfe = denoise, 0

    def __call__(self, x, sigma, class_labels=None):
        self.nfe += 1
        return self.denoise(x, sigma, class_labels)


def edm_sigma_steps(T, sigma_min=0.002, sigma_max=80.0, rho=7.0, device="cpu"):
    """t_i = (smax^(1/rho) + i/(T-1) (smin^(1/rho) - smax^(1/rho)))^rho, i < T; t_T = 0 (EDM eq. 5)."""
    i = torch.arange(T, dtype=torch.float64, device=device)
    t = (sigma_max ** (1 / rho) + i / (T - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64, device=device)])


def heun_sampler(denoise, x0, sigmas, class_labels=None, alpha=0.0, step_noise=None):
    """EDM deterministic 2nd-order Heun (EDM Alg. 1 with S_churn = 0); state in float64.

    alpha > 0: before each step's network call, x <- x + alpha t_i eps (PFGM++ robustness test),
    eps from `step_noise(shape)` (the per-seed generators). NFE = 2T - 1.
    """
    x = x0.to(torch.float64)
    ones = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(len(sigmas) - 1):
        t, t_next = sigmas[i], sigmas[i + 1]
        if alpha:
            x = x + alpha * t * step_noise(x.shape[1:])
        d = (x - denoise(x, t * ones, class_labels).to(torch.float64)) / t
        x_next = x + (t_next - t) * d
        if t_next > 0:   # Heun correction, skipped on the last step to sigma = 0
            d_next = (x_next - denoise(x_next, t_next * ones, class_labels).to(torch.float64)) / t_next
            x_next = x + (t_next - t) * (0.5 * d + 0.5 * d_next)
        x = x_next
    return x


def to_uint8(x):
    """uint8 = clip(x * 127.5 + 128, 0, 255) (EDM's saving convention)."""
    return (x * 127.5 + 128).clip(0, 255).to(torch.uint8)


def generate(denoise, seeds, shape, D, steps, sigma_min=0.002, sigma_max=80.0, rho=7.0,
             num_classes=0, device="cpu", alpha=0.0):
    """Samples for `seeds` (one batch): returns (float64 samples, labels or None, nfe per sample)."""
    gens = SeedGenerators(seeds)
    x0 = gens.prior(shape, sigma_max, D, device)
    labels = None
    if num_classes:
        labels = torch.nn.functional.one_hot(gens.randint(num_classes, device), num_classes).to(torch.float32)
    counter = CountingDenoiser(denoise)
    sigmas = edm_sigma_steps(steps, sigma_min, sigma_max, rho, device)
    noise = (lambda s: gens.randn(s, device)) if alpha else None
    x = heun_sampler(counter, x0, sigmas, labels, alpha=alpha, step_noise=noise)
    return x, labels, counter.nfe
