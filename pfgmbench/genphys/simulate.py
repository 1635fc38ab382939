"""Spectral (FFT) solutions of a linear GenPhys PDE on a periodic grid, in 1-D and 2-D.

Each Fourier mode evolves as a sum of the dispersion branches w_j(|k|) (genphys_dispersion):
  phi_hat(k, t) = sum_j A_j(k) phi_hat(k, 0) exp(-i w_j(k) t).
  First order in time: one branch, A = 1.
  Order n >= 2, mode "ivp": the A_j make d^m phi/dt^m (0) = 0 for m = 1..n-1, i.e. with s_j = -i w_j,
      A_j = prod_{l != j} s_l / (s_l - s_j)   (phi_t(0) = 0 for order 2; phi_t = phi_tt = 0 for order 3).
  Mode "qualifying": only the branch that passes C2, A = 1 (the decaying boundary-value solution the
      paper uses for Poisson-type PDEs, where the initial-value problem is ill-posed).
The start is two Gaussian bumps. Reported: the fraction of spectral power above a cutoff |k| > k_c,
relative to t = 0 ("normalised high-k power"), and whether the solution smooths, oscillates or
blows up (stopped as soon as a mode's amplification or the norm exceeds `blowup`: no inf/nan).

Public API
  simulate(text, params=None, dims=1, ...) -> dict of arrays and a behaviour label
  plot_simulation(result, path)             -> PNG: field over time and high-k power vs time
"""
from __future__ import annotations

import numpy as np

from pfgmbench.atomic import atomic_path
from pfgmbench.genphys.dispersion import (
    PDEParseError,
    dispersion,
    lambdify_branches,
    parse,
)


def _bumps(x, dims, length, width):
    """Two Gaussian bumps (heights 1 and 0.6) on the periodic box [0, length)^dims."""
    def d2(c):  # squared periodic distance to centre c
        return sum(((xi - ci + length / 2) % length - length / 2) ** 2 for xi, ci in zip(x, c))
    if dims == 1:
        c1, c2 = (length / 3,), (2 * length / 3,)
    else:
        c1, c2 = (length / 3, length / 3), (2 * length / 3, 0.6 * length)
    return np.exp(-d2(c1) / (2 * width ** 2)) + 0.6 * np.exp(-d2(c2) / (2 * width ** 2))


def _branch_values(evaluate, kabs, pv):
    """w_j at each |k| (B, M), nudging k where two branches (nearly) coincide so the A_j are finite."""
    w = evaluate(kabs, pv)[:, 0]
    if w.shape[0] > 1:
        gaps = np.min([np.abs(w[i] - w[j]) for i in range(len(w)) for j in range(i + 1, len(w))], axis=0)
        close = gaps < 1e-7 * (1 + np.abs(w).max(0))
        if close.any():
            kk = kabs.copy()
            kk[close] = kk[close] * (1 + 1e-6) + 1e-6
            w[:, close] = evaluate(kk[close], pv)[:, 0]
    return w


def _qualifying(w, w0):
    """Index of a branch with Im w_j(k) < Im w_j(0) at every k > 0 of the grid, else the best one."""
    im0 = w0.imag[:, None]
    ok = w.imag < im0 - 1e-9 * (1 + np.abs(im0))
    good = ok.all(1)
    return int(np.argmax(good)) if good.any() else int(np.argmax(ok.sum(1))), bool(good.any())


def simulate(text, params=None, dims=1, n=None, length=2 * np.pi, t_max=1.0, n_t=41, mode="ivp",
             cutoff=None, width=None, blowup=1e6):
    """Solve the PDE `text` spectrally from a two-bump start.

    params: {name: value} (single values; ranges are for classify). dims: 1 or 2.
    n: points per axis (default 256 in 1-D, 64 in 2-D); length: box side; t in linspace(0, t_max, n_t).
    mode: "ivp" (initial time derivatives zero) or "qualifying" (the C2 branch only).
    cutoff: |k| above which power counts as high-k (default: 1/8 of the Nyquist wavenumber).
    width: bump width (default one grid spacing: a broad spectrum). blowup: stop as soon as some
    mode's amplification |G(k, t)| or the L2 norm exceeds blowup (no inf/nan is produced).
    Behaviour: "blows up" (stopped), "grows" (some mode amplified > 10x by t_max, below blowup),
    "smooths" (normalised high-k power < 0.25 at t_max), else "oscillates".
    Returns a dict: x, t, phi (n_t_done, n[, n]), high_k_power (normalised), norm (L2 ratio),
    behaviour, t_stop, message, cutoff, branches, mode, qualifying_branch.
    """
    if dims not in (1, 2):
        raise PDEParseError(f"dims must be 1 or 2, got {dims!r}")
    if mode not in ("ivp", "qualifying"):
        raise PDEParseError(f"mode must be 'ivp' or 'qualifying', got {mode!r}")
    params = dict(params or {})
    if any(isinstance(v, (tuple, list)) for v in params.values()):
        raise PDEParseError("simulate needs single parameter values, not ranges")
    pde = parse(text, params if params else None)
    missing = [p for p in pde.params if p not in params]
    if missing:
        m = missing[0]
        raise PDEParseError(f"parameter {m!r} has no value; give it one with --param {m}=VALUE "
                            f"(params={{{m!r}: ...}} in Python)")
    branches = dispersion(pde)
    evaluate = lambdify_branches(branches, pde.params)
    pv = {p: np.array([float(params[p])]) for p in pde.params}

    n = n or (256 if dims == 1 else 64)
    dx = length / n
    x1 = np.arange(n) * dx
    k1 = 2 * np.pi * np.fft.fftfreq(n, d=dx)
    if dims == 1:
        xs, kabs = (x1,), np.abs(k1)
    else:
        xs = np.meshgrid(x1, x1, indexing="ij")
        kx, ky = np.meshgrid(k1, k1, indexing="ij")
        kabs = np.hypot(kx, ky)
    phi0 = _bumps(xs, dims, length, width or dx)
    phi0_hat = np.fft.fftn(phi0)
    kc = cutoff if cutoff is not None else np.pi / dx / 8
    high = kabs > kc

    kflat = kabs.ravel()
    w = _branch_values(evaluate, kflat, pv)                    # (B, M)
    w0 = evaluate(np.array([0.0]), pv)[:, 0, 0]
    s = -1j * w
    qual, qual_ok = _qualifying(w[:, kflat > 0], w0)
    if pde.order == 1:
        amp = np.ones_like(s)
    elif mode == "qualifying":
        amp = np.zeros_like(s)
        amp[qual] = 1.0
    else:
        amp = np.ones_like(s)
        for j in range(len(s)):
            for l in range(len(s)):
                if l != j:
                    amp[j] *= s[l] / (s[l] - s[j])
    with np.errstate(divide="ignore"):
        log_amp = np.log(np.abs(amp))                           # (B, M)
    norm0 = np.linalg.norm(phi0)

    def power_frac(ph):
        p = np.abs(ph) ** 2
        return p[high].sum() / p.sum()

    frac0 = power_frac(phi0_hat)
    times = np.linspace(0.0, t_max, n_t)
    fields, hk, norms, done = [], [], [], []
    t_stop, message, gain = None, "", 1.0
    for t in times:
        # G(k, t) = sum_j A_j exp(s_j t): the amplification of each mode, computed only when finite.
        if np.max(log_amp + s.real * t) > 700:
            g = None
        else:
            with np.errstate(under="ignore", invalid="ignore"):
                g = np.where(amp != 0, amp * np.exp(s * t), 0).sum(0)
        if g is None or not np.all(np.isfinite(g)) or np.abs(g).max() > blowup:
            t_stop = float(t)
            message = (f"blows up: some mode grows beyond {blowup:g} x its start by t={t:.4g} "
                       "(an unstable branch); stopped before overflow")
            break
        ph = g.reshape(phi0_hat.shape) * phi0_hat
        field = np.fft.ifftn(ph)
        nr = np.linalg.norm(field) / norm0
        if not np.isfinite(nr) or nr > blowup:
            t_stop = float(t)
            message = f"blows up: the L2 norm exceeds {blowup:g} x its start at t={t:.4g}; stopped"
            break
        gain = float(np.abs(g).max())
        fields.append(field)
        hk.append(power_frac(ph) / frac0)
        norms.append(nr)
        done.append(t)
    phi = np.array(fields)
    if np.abs(phi.imag).max() <= 1e-9 * max(np.abs(phi.real).max(), 1e-300):
        phi = phi.real
    hk, norms = np.array(hk), np.array(norms)
    if t_stop is not None:
        behaviour = "blows up"
    elif gain > 10:
        behaviour = "grows"
        message = (f"grows: some mode is amplified {gain:.3g} x by t={done[-1]:.4g} (an unstable branch), "
                   f"below the blow-up threshold {blowup:g}")
    elif hk[-1] < 0.25:
        behaviour = "smooths"
        message = f"smooths: high-k power falls to {hk[-1]:.3g} of its start by t={done[-1]:.4g}"
    else:
        behaviour = "oscillates"
        message = f"does not smooth: high-k power stays in [{hk.min():.3g}, {hk.max():.3g}] of its start"
    return {"x": x1, "t": np.array(done), "phi": phi, "high_k_power": hk, "norm": norms,
            "behaviour": behaviour, "t_stop": t_stop, "message": message, "dims": dims, "cutoff": float(kc),
            "branches": [str(b) for b in branches], "mode": mode if pde.order > 1 else "first-order",
            "qualifying_branch": qual if qual_ok else None, "pde": pde.text, "params": params}


def plot_simulation(result, path):
    """PNG with the field over time (1-D: curves at several times; 2-D: snapshots) and the
    normalised high-k power vs time, written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, phi, hk = result["t"], np.real(result["phi"]), result["high_k_power"]
    picks = np.unique(np.linspace(0, len(t) - 1, min(len(t), 5 if result["dims"] == 1 else 4)).astype(int))
    ncol = 2 if result["dims"] == 1 else len(picks) + 1
    fig, axes = plt.subplots(1, ncol, figsize=(4 * ncol, 3.4), constrained_layout=True)
    if result["dims"] == 1:
        for i in picks:
            axes[0].plot(result["x"], phi[i], label=f"t={t[i]:.3g}")
        axes[0].set_xlabel("x")
        axes[0].set_ylabel("Re phi")
        axes[0].legend(fontsize=7)
    else:
        for ax, i in zip(axes[:-1], picks):  # each snapshot on its own colour scale
            ax.imshow(phi[i].T, origin="lower", cmap="viridis")
            ax.set_title(f"t={t[i]:.3g}  [{phi[i].min():.2g}, {phi[i].max():.2g}]", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    ax = axes[-1]
    ax.semilogy(t, np.maximum(hk, 1e-20))
    ax.set_xlabel("t")
    ax.set_ylabel(f"high-k power (|k|>{result['cutoff']:.3g}) / start")
    fig.suptitle(f"{result['pde']}  {result['params'] or ''}: {result['behaviour']}", fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return str(path)
