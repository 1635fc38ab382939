"""Sample-based distances for point-cloud toys: MMD (RBF, several bandwidths), sliced W2, energy."""
import numpy as np
import torch


def _as64(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float64).flatten(1)


def mmd_rbf(x, y, bandwidths=(0.1, 0.2, 0.5, 1.0, 2.0)):
    """Unbiased MMD^2 with a sum of RBF kernels exp(-||a-b||^2 / (2 h^2)), h relative to the
    median pairwise distance of y so the metric is scale-free."""
    x, y = _as64(x), _as64(y)
    med = torch.cdist(y, y).median().clamp_min(1e-12)
    dxx, dyy, dxy = torch.cdist(x, x) ** 2, torch.cdist(y, y) ** 2, torch.cdist(x, y) ** 2
    n, m = len(x), len(y)
    total = 0.0
    for h in bandwidths:
        s = 2 * (h * med) ** 2
        kxx, kyy, kxy = (-dxx / s).exp(), (-dyy / s).exp(), (-dxy / s).exp()
        total += ((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean()).item()
    return total


def sliced_w2(x, y, projections=256, seed=0):
    """Sliced Wasserstein-2: sqrt of the mean over random directions of W2^2 of the 1-D projections
    (quantiles matched on a common grid so n != m works)."""
    x, y = _as64(x), _as64(y)
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(x.shape[1], projections, generator=g, dtype=torch.float64)
    dirs /= dirs.norm(dim=0, keepdim=True)
    px, py = (x @ dirs).sort(0).values, (y @ dirs).sort(0).values
    q = torch.linspace(0, 1, max(len(x), len(y)), dtype=torch.float64)
    qx = torch.quantile(px, q, dim=0) if len(x) != len(q) else px
    qy = torch.quantile(py, q, dim=0) if len(y) != len(q) else py
    return float(((qx - qy) ** 2).mean().sqrt())


def energy_distance(x, y):
    """2 E||X-Y|| - E||X-X'|| - E||Y-Y'|| (unbiased within-set terms)."""
    x, y = _as64(x), _as64(y)
    n, m = len(x), len(y)
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).sum() / (n * (n - 1))
                 - torch.cdist(y, y).sum() / (m * (m - 1)))


TOY_METRICS = {"mmd": mmd_rbf, "swd": sliced_w2, "energy": energy_distance}
