"""ODE solvers over (velocity, grid, x0), k-diffusion style: short pure loops that know no physics.

velocity(x, t) -> dx/dt on a float64 state; grid: the times to step through (float64, 1-D);
hook(x, t): called on the state before each step (PFGM++'s alpha noise, ancestral noise).
The number of network evaluations (NFE) is counted by wrapping the network in `Counting`,
never computed from the step count.
"""
import torch


class Counting:
    """Wraps a model and counts its calls: the NFE per sample of one batch."""

    def __init__(self, model):
        self.model, self.nfe = model, 0

    def __call__(self, *args, **kwargs):
        self.nfe += 1
        return self.model(*args, **kwargs)


def euler(velocity, grid, x0, hook=None):
    """x_{i+1} = x_i + (t_{i+1} - t_i) v(x_i, t_i)."""
    x = x0.to(torch.float64)
    for i in range(len(grid) - 1):
        t, t_next = grid[i], grid[i + 1]
        if hook is not None:
            x = hook(x, t)
        x = x + (t_next - t) * velocity(x, t)
    return x


def heun(velocity, grid, x0, hook=None):
    """Heun's second-order method (EDM Algorithm 1 with S_churn = 0): the trapezoidal correction
    at every step, except an Euler step onto t = 0, where the velocity is not defined."""
    x = x0.to(torch.float64)
    for i in range(len(grid) - 1):
        t, t_next = grid[i], grid[i + 1]
        if hook is not None:
            x = hook(x, t)
        d = velocity(x, t)
        x_next = x + (t_next - t) * d
        if t_next > 0:
            d_next = velocity(x_next, t_next)
            x_next = x + (t_next - t) * (0.5 * d + 0.5 * d_next)
        x = x_next
    return x


SOLVERS = {"euler": euler, "heun": heun}
