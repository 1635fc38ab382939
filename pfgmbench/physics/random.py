"""Random draws from a torch.Generator, made on the generator's device and moved to where they
are used: training runs draw from one CPU generator, so a run's noise (and its loss trajectory)
is the same on a CPU and on a GPU.

Gamma draws take a generator too (torch.distributions cannot), in float64. Beta(a, b) =
G_a / (G_a + G_b), and the PFGM++ radius needs beta / (1 - beta) = G_a / G_b, so the kernel uses
the two gammas directly and never forms 1 - beta.
"""
import torch


def _home(generator):
    return generator.device if generator is not None else torch.device("cpu")


def randn(shape, generator=None, device="cpu", dtype=torch.float32):
    return torch.randn(shape, generator=generator, device=_home(generator), dtype=dtype).to(device)


def rand(shape, generator=None, device="cpu", dtype=torch.float32):
    return torch.rand(shape, generator=generator, device=_home(generator), dtype=dtype).to(device)


def randint(high, shape, generator=None, device="cpu"):
    return torch.randint(high, shape, generator=generator, device=_home(generator)).to(device)


def gamma(alpha, generator=None):
    """G ~ Gamma(alpha, 1) elementwise, float64 (Marsaglia & Tsang 2000, boosted for alpha < 1);
    drawn on the generator's device, returned on alpha's."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    target = alpha.device
    device = _home(generator)
    alpha = alpha.to(device)
    boost = alpha < 1
    a = torch.where(boost, alpha + 1, alpha)
    d = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while todo.any():                    # acceptance > 95% per round: a few rounds at most
        idx = todo.nonzero(as_tuple=True)
        n = idx[0].numel()
        x = torch.randn(n, generator=generator, dtype=torch.float64, device=device)
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=device)
        v = (1 + c[idx] * x) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * x * x + d[idx] * (1 - v + torch.log(v.clamp_min(1e-300))))
        acc = tuple(i[ok] for i in idx)
        out[acc] = d[acc] * v[ok]
        todo[acc] = False
    if boost.any():                      # G_alpha = G_{alpha+1} * U^(1/alpha)
        u = torch.rand(out.shape, generator=generator, dtype=torch.float64, device=device)
        out = torch.where(boost, out * u ** (1.0 / alpha), out)
    return out.to(target)
