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


def gmm1000_fd(x, y=None):
    """Distance of samples from the known gmm1000 mixture (0.5 N(+1, 0.04 I) + 0.5 N(-1, 0.04 I) in a
    10-d subspace of R^1000, plus 0.01 noise), against its exact parameters rather than a finite
    reference set. In the latent (least-squares) coordinates, each sample is given to the mode on its
    side; the value is the mean over the two modes of the Fréchet distance to that exact component,
    plus d (2 w - 1)^2 for mode weights (w, 1 - w), plus sum over the 990 other directions of
    (std - 0.01)^2 for an isotropic fit. `y` is ignored (the reference is exact)."""
    from pfgmbench.data.toys import (
        GMM1000_LATENT_STD,
        GMM1000_NOISE,
        gmm1000_projection,
    )
    from pfgmbench.metrics.frechet import frechet_distance

    x = _as64(x).numpy()
    P = gmm1000_projection()                                   # (10, 1000)
    d = P.shape[0]
    z = np.linalg.lstsq(P.T, x.T, rcond=None)[0].T             # latent coordinates (n, 10)
    resid = x - z @ P
    cov = GMM1000_LATENT_STD ** 2 * np.eye(d) + GMM1000_NOISE ** 2 * np.linalg.inv(P @ P.T)
    plus = z.mean(1) > 0
    modes = []
    for side, sign in ((plus, 1.0), (~plus, -1.0)):
        zs = z[side]
        if len(zs) < 2:                        # a lost mode: as far as the other one (|2 * 1|^2 per axis)
            modes.append(4.0 * d)
        else:
            modes.append(frechet_distance(zs.mean(0), np.cov(zs, rowvar=False), sign * np.ones(d), cov))
    w = plus.mean()
    off = x.shape[1] - d
    s_r = np.sqrt((resid ** 2).sum(1).mean() / off)
    return float(np.mean(modes) + d * (2 * w - 1) ** 2 + off * (s_r - GMM1000_NOISE) ** 2)


TOY_METRICS["gmm-fd"] = gmm1000_fd
