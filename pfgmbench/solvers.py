"""ODE solvers over (velocity, grid, x0), k-diffusion style: short pure loops that know no physics.

velocity(x, t) -> dx/dt on a float64 state; grid: the times to step through (float64, 1-D);
hook(x, t): called on the state before each step (PFGM++'s alpha noise); noise(shape): fresh
Gaussian noise per sample (the per-seed generators), for ancestral sampling.
The number of network evaluations (NFE) is counted by wrapping the network in `Counting`,
never computed from the step count.
"""
import math

import torch

from pfgmbench.errors import UserError


class Counting:
    """Wraps a model and counts its calls: the NFE per sample of one batch."""

    def __init__(self, model):
        self.model, self.nfe = model, 0

    def __call__(self, *args, **kwargs):
        self.nfe += 1
        return self.model(*args, **kwargs)


def mean_nfe(total, n):
    """NFE per sample as counted: an integer for fixed grids, the batch mean for adaptive solvers."""
    v = total / max(n, 1)
    return int(v) if v == int(v) else round(v, 2)


def euler(velocity, grid, x0, hook=None, noise=None):
    """x_{i+1} = x_i + (t_{i+1} - t_i) v(x_i, t_i)."""
    x = x0.to(torch.float64)
    for i in range(len(grid) - 1):
        t, t_next = grid[i], grid[i + 1]
        if hook is not None:
            x = hook(x, t)
        x = x + (t_next - t) * velocity(x, t)
    return x


def heun(velocity, grid, x0, hook=None, noise=None):
    """Heun's second-order method (EDM Algorithm 1 with S_churn = 0): the trapezoidal correction
    at every step, except a last Euler step when the grid ends at t = 0 (noise level zero, where
    the velocity is not defined)."""
    x = x0.to(torch.float64)
    last = len(grid) - 2
    for i in range(len(grid) - 1):
        t, t_next = grid[i], grid[i + 1]
        if hook is not None:
            x = hook(x, t)
        d = velocity(x, t)
        x_next = x + (t_next - t) * d
        if not (i == last and t_next == 0):
            d_next = velocity(x_next, t_next)
            x_next = x + (t_next - t) * (0.5 * d + 0.5 * d_next)
        x = x_next
    return x


def ancestral(velocity, grid, x0, hook=None, noise=None, noise_up=None):
    """Ancestral sampling over noise levels (DDPM; k-diffusion's Euler-ancestral): each step goes
    deterministically down to sigma_down and adds fresh noise of std sigma_up, with
    sigma_up = min(s', sqrt(s'^2 (s^2 - s'^2) / s^2)) (the posterior's), or `noise_up(s, s')`
    when given, and sigma_down = sqrt(s'^2 - sigma_up^2)."""
    x = x0.to(torch.float64)
    for i in range(len(grid) - 1):
        s, s_next = grid[i], grid[i + 1]
        if hook is not None:
            x = hook(x, s)
        up = noise_up(s, s_next) if noise_up is not None else (s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2).sqrt()
        up = torch.minimum(s_next, up)
        down = (s_next ** 2 - up ** 2).sqrt()
        x = x + (down - s) * velocity(x, s)
        if s_next > 0:
            x = x + up * noise(x.shape[1:])
    return x


def euler_maruyama(velocity, grid, x0, hook=None, noise=None, diffusion=None):
    """A reverse-time SDE: x_{i+1} = x_i + (t_{i+1} - t_i) f(x_i, t_i) + g(t_i) sqrt(|t_{i+1} - t_i|) n_i,
    with the drift f as `velocity`; the last step adds no noise (it returns the mean)."""
    x = x0.to(torch.float64)
    for i in range(len(grid) - 1):
        t, t_next = grid[i], grid[i + 1]
        if hook is not None:
            x = hook(x, t)
        x = x + (t_next - t) * velocity(x, t)
        if i < len(grid) - 2:
            x = x + diffusion(t) * (t - t_next).abs().sqrt() * noise(x.shape[1:])
    return x


def rk45(velocity, grid, x0, hook=None, noise=None, rtol=1e-4, atol=1e-4):
    """Adaptive Dormand-Prince RK45 (scipy's solve_ivp) from grid[0] to grid[-1], on the whole batch
    as one state: the step sizes are shared by the batch, as in the PFGM authors' sampler."""
    from scipy.integrate import solve_ivp

    if hook is not None:
        raise UserError("step noise (--alpha) needs a fixed grid; use --sampler euler or heun")
    shape, dev = x0.shape, x0.device

    def f(t, y):
        x = torch.from_numpy(y).reshape(shape).to(dev)
        return velocity(x, torch.tensor(t, dtype=torch.float64)).cpu().numpy().reshape(-1)

    sol = solve_ivp(f, (float(grid[0]), float(grid[-1])), x0.to(torch.float64).cpu().numpy().reshape(-1),
                    method="RK45", rtol=rtol, atol=atol)
    if not sol.success or not math.isclose(sol.t[-1], float(grid[-1])):
        raise UserError(f"RK45 did not reach the end of the ODE ({sol.message}); try --sampler euler")
    return torch.from_numpy(sol.y[:, -1]).reshape(shape).to(dev)


SOLVERS = {"euler": euler, "heun": heun, "ancestral": ancestral, "euler_maruyama": euler_maruyama, "rk45": rk45}
