"""The talk's pictures, from exact fields on 2-D data (no training): backward-ODE trajectories of
PFGM (in R^3 = data plane + z) and of PFGM++ at several D, and the failure without the extra
dimension (the plain 2-D Poisson field of the data sends samples to a few spots near the middle).

`pfgmbench demos --out DIR` writes PNGs and a summary.json with the numbers the pictures show.
"""
import math
from pathlib import Path

import torch

from pfgmbench.atomic import atomic_path, write_json
from pfgmbench.data import load_dataset
from pfgmbench.physics.pfgm import PFGM, empirical_field, hyperparameters
from pfgmbench.physics.pfgmpp import PFGMPP, exact_denoiser
from pfgmbench.solvers import heun

TOYS = ("heart", "text")


def _points(name, n=600):
    x = load_dataset({"name": name}).data[:n].to(torch.float64)
    return x


def _record(solver, velocity, grid, x0):
    """Run a solver and keep the state before every step (the trajectory), float64."""
    path = []

    def hook(x, t):
        path.append(x.clone())
        return x

    end = solver(velocity, grid, x0, hook=hook)
    return torch.stack(path + [end])      # (steps + 1, B, dim)


def pfgm_paths(points, n=150, steps=120, seed=0):
    """PFGM's ln z ODE with the exact empirical field of `points`, from its hemisphere prior."""
    N = points.shape[1]
    h = hyperparameters(float(points.norm(dim=1).mean()), N)
    cfg = {"physics": {"family": "pfgm", "pfgm": {**PFGM.defaults["pfgm"], **h, "z_exp": 0.0}}, "sample": {}}
    fam = PFGM(cfg, (N,))
    g = torch.Generator().manual_seed(seed)
    x0 = fam.prior((n, N), g)
    v = fam.velocity(lambda x, z: empirical_field(x, z, points, 5.0))
    return _record(heun, v, fam.grid(steps), x0), h


def _family_label(D):
    cfg = {"physics": {"family": "pfgmpp", "D": D}, "sample": {}}
    return PFGMPP(cfg, (2,)).label()


def pfgmpp_paths(points, D, n=150, steps=60, seed=0):
    """PFGM++'s ODE at D with the exact posterior denoiser of `points` (EDM's sigma grid)."""
    N = points.shape[1]
    cfg = {"physics": {"family": "pfgmpp", "D": D}, "sample": {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}}
    fam = PFGMPP(cfg, (N,))
    x0 = fam.prior((n, N), torch.Generator().manual_seed(seed))
    den = exact_denoiser(points, D)
    return _record(heun, fam.velocity(lambda x, s: den(x, s)), fam.grid(steps), x0)


def no_z_paths(points, n=150, steps=400, radius=6.0, seed=0):
    """Follow the 2-D Poisson field of the data itself (no extra dimension) backwards from a circle:
    E(x) = sum_i (x - p_i) / |x - p_i|^N; unit steps against E, total length = the start radius."""
    g = torch.Generator().manual_seed(seed)
    ang = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    x = radius * torch.stack([ang.cos(), ang.sin()], 1)
    path, h = [x.clone()], radius / steps
    N = points.shape[1]
    for _ in range(steps):
        d = x[:, None, :] - points[None]
        r = d.norm(dim=2, keepdim=True).clamp_min(1e-9)
        E = (d / r ** N).sum(1)
        x = x - h * E / E.norm(dim=1, keepdim=True).clamp_min(1e-12)
        path.append(x.clone())
    return torch.stack(path)


def coverage(ends, points, tol=0.1):
    """Share of data points with a sample within `tol`, and of samples within `tol` of the data."""
    d = torch.cdist(ends, points)
    return float((d.min(0).values < tol).float().mean()), float((d.min(1).values < tol).float().mean())


def _plot(ax, paths, points, title, lim=2.2):
    ax.scatter(points[:, 0], points[:, 1], s=1, c="0.75", zorder=0)
    p = paths.numpy()
    for b in range(p.shape[1]):
        ax.plot(p[:, b, 0], p[:, b, 1], lw=0.4, alpha=0.6, color="C0")
    ax.scatter(p[-1, :, 0], p[-1, :, 1], s=3, c="C3", zorder=3)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def make_demos(out, D_values=(1.0, 4.0, 64.0, math.inf), progress=print):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in TOYS:
        pts = _points(name)
        progress(f"demos: {name}")
        paths, h = pfgm_paths(pts)
        ends = paths[-1][:, :2]
        fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=110)
        _plot(axes[0], paths[:, :, :2], pts, f"PFGM on '{name}': trajectories in the data plane")
        zp = paths.numpy()
        for b in range(zp.shape[1]):
            axes[1].plot(zp[:, b, 0], zp[:, b, 2], lw=0.4, alpha=0.6, color="C0")
        axes[1].set_xlabel("x1")
        axes[1].set_ylabel("z")
        axes[1].set_xlim(-h["upper_norm"], h["upper_norm"])
        axes[1].set_title(f"side view: from the hemisphere z = {h['z_max']:.2f} down to z = 0", fontsize=8)
        fig.tight_layout()
        _save(fig, out / f"pfgm_trajectories_{name}.png")
        summary[f"pfgm_{name}"] = {"z_max": h["z_max"], "M": h["M"], "upper_norm": h["upper_norm"],
                                   "data_covered": coverage(ends, pts)[0], "samples_on_data": coverage(ends, pts)[1]}

        fig, axes = plt.subplots(1, len(D_values), figsize=(3 * len(D_values), 3.2), dpi=110)
        for ax, D in zip(axes, D_values):
            paths = pfgmpp_paths(pts, D)
            _plot(ax, paths, pts, f"{_family_label(D)} D={D:g}: last steps")
            summary[f"pfgmpp_{name}_D{D:g}"] = dict(zip(("data_covered", "samples_on_data"),
                                                        coverage(paths[-1], pts)))
        fig.tight_layout()
        _save(fig, out / f"pfgmpp_trajectories_{name}.png")

        paths = no_z_paths(pts)
        fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=110)
        _plot(axes[0], paths, pts, "no extra dimension: the 2-D field of the data", lim=6.2)
        _plot(axes[1], paths[-40:], pts, "where the samples end (zoom)")
        fig.tight_layout()
        _save(fig, out / f"no_z_collapse_{name}.png")
        ends = paths[-1]
        summary[f"no_z_{name}"] = {"data_covered": coverage(ends, pts)[0], "samples_on_data": coverage(ends, pts)[1],
                                   "end_spread": float(ends.std(0).norm()), "data_spread": float(pts.std(0).norm())}
    write_json(out / "summary.json", summary)
    return summary


def _save(fig, path):
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)

