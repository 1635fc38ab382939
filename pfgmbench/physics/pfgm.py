"""Original PFGM (Xu et al., NeurIPS 2022; REFERENCE 4): the Poisson field of the data placed on the
z = 0 hyperplane of R^(N+1), learned from an empirical field over a large batch, and sampled by
the backward ODE in ln z from a large hemisphere. (Not PFGM++ at D = 1: its own perturbation,
target, network head and ODE.)

Solver state: (x, z) flattened to N + 1 numbers per sample, float64; the solver time is t = ln z.
"""
import math

import torch

from pfgmbench.errors import UserError
from pfgmbench.physics.base import Family, TrainingExample
from pfgmbench.physics.random import gamma, rand, randn

Z_EPS = 1e-5      # the ODE's guard in dx/dz = v_x / (v_z + 1e-5)


def hyperparameters(data_norm, N, sigma=0.01, tau=0.03):
    """The paper's rules (PFGM appendix B.1-B.2) from the average data norm and the dimension N:
    M = int(0.75 ln(norm^2 / (2 sqrt(N) sigma^2)) / ln(1 + tau)) + 1,
    z_max = sqrt(2/pi) sigma (1+tau)^M, upper_norm = sqrt(N) sigma (1+tau)^M."""
    M = int(0.75 * math.log(data_norm ** 2 / (2 * math.sqrt(N) * sigma ** 2)) / math.log(1 + tau)) + 1
    grow = (1 + tau) ** M
    return {"M": M, "z_max": math.sqrt(2 / math.pi) * sigma * grow, "upper_norm": math.sqrt(N) * sigma * grow}


def perturb(y, M, sigma, tau, restrict, generator=None):
    """PFGM's Algorithm 2: m ~ U[0, M] (U[0, restrict M] where |eps_z| < 0.005), eps ~ N(0, sigma^2 I);
    x~ = y + ||eps_x|| (1+tau)^m u, z~ = |eps_z| (1+tau)^m. Returns (x~ (B, ...), z~ (B,))."""
    B, dev = y.shape[0], y.device
    m = rand(B, generator, dev, torch.float64) * M
    z0 = (randn(B, generator, dev, torch.float64) * sigma).abs()
    small = z0 < 0.005
    m_small = rand(B, generator, dev, torch.float64) * int(M * restrict)
    m = torch.where(small, m_small, m)
    grow = (1 + tau) ** m
    eps_norm = (randn(y.shape, generator, dev, torch.float64) * sigma).flatten(1).norm(dim=1)
    u = randn(y.shape, generator, dev, torch.float64)
    u = u / u.flatten(1).norm(dim=1).reshape(-1, *([1] * (y.dim() - 1)))
    x = y.to(torch.float64) + (eps_norm * grow).reshape(-1, *([1] * (y.dim() - 1))) * u
    return x.to(y.dtype), z0 * grow


def empirical_field(x, z, points, gamma_):
    """The normalised empirical Poisson field at (x, z) of point sources at (points, 0) (PFGM eq. 7):
    w_i ∝ ||(x, z) - (p_i, 0)||^-(N+1), normalised in log space (exact, no underflow);
    E = sum_i w_i ((p_i, 0) - (x, z)), pointing toward the data; target = sqrt(N) E / (||E|| + gamma).
    x: (B, N), z: (B,), points: (K, N). Returns (B, N + 1), float64."""
    x, z, p = x.to(torch.float64), z.to(torch.float64), points.to(torch.float64)
    N = x.shape[1]
    d2 = torch.cdist(x, p).square() + z[:, None] ** 2          # squared distances in R^(N+1)
    w = torch.softmax(-(N + 1) / 2 * torch.log(d2.clamp_min(1e-300)), dim=1)
    E = torch.cat([w @ p - x, -z[:, None]], dim=1)               # sum_i w_i = 1
    return math.sqrt(N) * E / (E.norm(dim=1, keepdim=True) + gamma_)


class PFGM(Family):
    name = "pfgm"
    samplers = {"rk45": "rk45", "euler": "euler", "heun": "heun"}
    default_sampler = "rk45"
    knob_names = ()
    batch_coupled = ("rk45",)          # adaptive steps are shared by a batch (as in the authors' code)
    defaults = {"pfgm": {"M": None, "z_max": None, "upper_norm": None, "sigma": 0.01, "tau": 0.03,
                         "restrict": 0.7, "gamma": 5.0, "big_batch": 4096, "z_min": 1e-3, "z_exp": 5.0,
                         "rtol": 1e-4, "atol": 1e-4}}

    def __init__(self, cfg, data_shape):
        super().__init__(cfg, data_shape)
        self.p = dict(self.physics["pfgm"])

    @classmethod
    def check_config(cls, cfg):
        p = cfg["physics"].get("pfgm")
        if not isinstance(p, dict):
            raise UserError("family pfgm needs the physics.pfgm section; use a pfgm preset or --family pfgm")
        if p["big_batch"] < cfg["train"]["batch"]:
            raise UserError(f"physics.pfgm.big_batch ({p['big_batch']}) must be at least train.batch "
                            f"({cfg['train']['batch']}): the minibatch is its first points")

    @classmethod
    def fit_to_data(cls, cfg, dataset):
        """Fill M, z_max and upper_norm left as null from the data by the paper's rules."""
        p = cfg["physics"]["pfgm"]
        if None not in (p["M"], p["z_max"], p["upper_norm"]):
            return cfg
        x = dataset.batch(torch.arange(len(dataset))).flatten(1).to(torch.float64)
        rules = hyperparameters(x.norm(dim=1).mean().item(), x.shape[1], p["sigma"], p["tau"])
        for k, v in rules.items():
            if p[k] is None:
                p[k] = round(float(v), 6) if k != "M" else int(v)
        return cfg

    def label(self, sampler=None):
        return "PFGM"

    def _ready(self):
        if None in (self.p["M"], self.p["z_max"], self.p["upper_norm"]):
            raise UserError("PFGM's M, z_max and upper_norm are not set; they are filled from the data when "
                            "training starts (or set physics.pfgm.M / z_max / upper_norm)")

    # --- training ---
    def training_example(self, y, generator, draw_data=None):
        """The minibatch perturbed, and its target: the normalised empirical field of a large batch
        whose first points are the minibatch itself (each point's own source included)."""
        self._ready()
        p = self.p
        x, z = perturb(y, p["M"], p["sigma"], p["tau"], p["restrict"], generator)
        extra = max(0, int(p["big_batch"]) - y.shape[0])
        big = y if not extra or draw_data is None else torch.cat([y, draw_data(extra)])
        target = self.field(x.flatten(1), z, big.flatten(1)).to(torch.float32)
        return TrainingExample(x=x, t=z.clamp_min(1e-10).to(torch.float32), target=target,
                               weight=torch.ones(y.shape[0], device=y.device))

    def field(self, x, z, points):
        """The normalised training target at (x, z) from the sources `points` (PFGM: the Poisson field)."""
        return empirical_field(x, z, points, self.p["gamma"])

    def net_channels(self, channels):
        return channels, channels + 1          # an extra output channel for the field's z component

    def head(self, backbone, label_dim=0):
        from pfgmbench.nets.precond import PFGMHead

        return PFGMHead(backbone, label_dim=label_dim)

    # --- sampling ---
    def prior(self, shape, generator, sampler=None):
        """On the hemisphere z = z_max: R = z_max sqrt(B / (1 - B)), B ~ Beta(N/2, 1/2), clipped to
        [1, upper_norm], a uniform direction in R^N; float64 state (x, z)."""
        self._ready()
        B, N = shape[0], self.N
        ga = gamma(torch.full((B,), N / 2, dtype=torch.float64), generator)
        gb = gamma(torch.full((B,), 0.5, dtype=torch.float64), generator)
        R = (self.p["z_max"] * (ga / gb.clamp_min(torch.finfo(torch.float64).tiny)).sqrt()).clamp(1, self.p["upper_norm"])
        return self.state_on_plane(R, generator)

    def state_on_plane(self, R, generator):
        """States (x, z_max) with |x| = R and x / |x| uniform on the sphere in R^N (a normalised Gaussian)."""
        u = torch.randn((len(R), self.N), generator=generator, dtype=torch.float64)
        u = u / u.norm(dim=1, keepdim=True)
        return torch.cat([R[:, None] * u, torch.full((len(R), 1), float(self.p["z_max"]), dtype=torch.float64)], dim=1)

    def grid(self, steps, device="cpu", sampler=None):
        """RK45: t = ln z from ln z_max to ln z_min (the authors' change of variable). Euler / Heun:
        `steps` steps in z itself on a geometric grid, as the authors' Euler / improved Euler take them
        (a z-step is exact on a radial field; a step in ln z is not)."""
        self._ready()
        lnz = torch.linspace(math.log(self.p["z_max"]), math.log(self.p["z_min"]), (1 if sampler == "rk45" else steps) + 1,
                             dtype=torch.float64, device=device)
        return lnz if sampler == "rk45" else lnz.exp()

    def solver_options(self, sampler):
        return {"rtol": self.p["rtol"], "atol": self.p["atol"]} if sampler == "rk45" else {}

    def field_direction(self, model, state, z):
        """dx/dz = v_x / (v_z + 1e-5) at height z (PFGM eq. 10), with the authors' substitute for v_z
        below z_exp (appendix B.2.3): v_z = -sqrt(N) z / (|x| + gamma), where |x| = gamma u / (1 - u)
        and u = |v_x| / sqrt(N) come from the normalisation of the predicted field."""
        N = self.N
        x = state[:, :N].reshape(-1, *self.shape)
        out = model(x, torch.full((state.shape[0],), z, dtype=torch.float64, device=state.device))
        out = out.to(torch.float64).flatten(1)
        vx, vz = out[:, :N], out[:, N]
        return vx / (self.sampling_vz(vx, vz, z) + Z_EPS)[:, None]

    def sampling_vz(self, vx, vz, z):
        """The z component the backward ODE divides by: the network's, or below z_exp the authors' substitute."""
        N, p = self.N, self.p
        if p["z_exp"] and z < p["z_exp"] and p["gamma"] > 0:
            unit = vx.norm(dim=1) / math.sqrt(N)
            norm = torch.sqrt((p["gamma"] * unit / (1 - unit)) ** 2 + z ** 2)
            vz = -math.sqrt(N) * z / (norm + p["gamma"])
        return vz

    def velocity(self, model, sampler=None):
        """The backward ODE: in t = ln z for RK45, dx/dt = z dx/dz, dz/dt = z; in z for Euler / Heun,
        dx/dz, dz/dz = 1 (the state carries z, which moves exactly with the grid)."""
        in_log_z = sampler == "rk45"

        def v(state, t):
            z = float(torch.exp(torch.as_tensor(t, dtype=torch.float64))) if in_log_z else float(t)
            dxdz = self.field_direction(model, state, z)
            rate = z if in_log_z else 1.0
            return torch.cat([rate * dxdz, torch.full((state.shape[0], 1), rate, dtype=torch.float64,
                                                      device=state.device)], dim=1)

        return v

    def to_data(self, state):
        return state[:, :self.N].reshape(-1, *self.shape)

