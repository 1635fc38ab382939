"""The score-SDE baselines in EDM's unified view (REFERENCE 5; EDM Table 1 and its ablation
sampler): VP (sampled as VP-ODE, DDIM or DDPM) and VE (sampled as VE-ODE). Both train a denoiser
D(x; sigma) with weight 1 / sigma^2 and differ in the noise law, the preconditioning and how sampling
walks the noise levels.

Solver times: VP-ODE walks t in [1, 0] with sigma(t) and the scaling s(t) (state s x); DDIM and
DDPM walk sigma itself (no scaling); VE-ODE walks t = sigma^2.
"""
import functools
import math

import torch

from pfgmbench.errors import UserError
from pfgmbench.physics.base import Family, TrainingExample
from pfgmbench.physics.random import rand, randn


def vp_sigma(t, beta_d=19.9, beta_min=0.1):
    """sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1) (VP, EDM Table 1)."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return ((0.5 * beta_d * t ** 2 + beta_min * t).exp() - 1).sqrt()


def vp_sigma_inv(sigma, beta_d=19.9, beta_min=0.1):
    """t(sigma) = (sqrt(beta_min^2 + 2 beta_d ln(1 + sigma^2)) - beta_min) / beta_d."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    return ((beta_min ** 2 + 2 * beta_d * (1 + sigma ** 2).log()).sqrt() - beta_min) / beta_d


def ddpm_sigmas(M=1000, beta_1=1e-4, beta_M=0.02):
    """DDPM's discrete noise levels sigma_j = sqrt((1 - abar_j) / abar_j), j = 1..M, from its linear betas
    beta_j = linspace(1e-4, 0.02, M) and abar_j = prod_{i <= j} (1 - beta_i) (Ho et al. 2020)."""
    abar = torch.cumprod(1 - torch.linspace(beta_1, beta_M, M, dtype=torch.float64), 0)
    return ((1 - abar) / abar).sqrt()


def ddpm_noise(s, s_next):
    """DDPM's 'fixedlarge' step noise (variance beta_t, the CIFAR-10 setting), in noise-level units:
    with abar = 1 / (1 + sigma^2), beta_t = 1 - abar_t / abar_(t-1), the fresh noise of the unscaled
    state has std sqrt(beta_t / abar_(t-1)) = sqrt((s^2 - s'^2)(1 + s'^2) / (1 + s^2))."""
    return ((s ** 2 - s_next ** 2) * (1 + s_next ** 2) / (1 + s ** 2)).sqrt()


@functools.lru_cache(maxsize=4)
def iddpm_sigmas(M=1000, C_1=0.001, C_2=0.008):
    """The improved-DDPM noise levels u_j, j = 0..M (EDM's DDIM discretisation): u_M = 0,
    u_{j-1} = sqrt((u_j^2 + 1) / max(abar(j-1) / abar(j), C_1) - 1), abar(j) = sin^2(pi j / (2 M (C_2 + 1)))."""
    u = torch.zeros(M + 1, dtype=torch.float64)

    def abar(j):
        return math.sin(0.5 * math.pi * j / M / (C_2 + 1)) ** 2

    for j in range(M, 0, -1):
        u[j - 1] = math.sqrt((u[j] ** 2 + 1) / max(abar(j - 1) / abar(j), C_1) - 1)
    return u


class VP(Family):
    """Variance preserving (DDPM++ in the score-SDE paper). Samplers: euler / heun / rk45 on the
    probability-flow ODE (VP-ODE), sde (Euler-Maruyama on the reverse SDE: VP-SDE), ddim (Euler on the
    iDDPM discretisation, linear schedule, no scaling) and ddpm (ancestral sampling over the 1000 DDPM
    noise levels)."""
    name = "vp"
    samplers = {"euler": "euler", "heun": "heun", "rk45": "rk45", "sde": "euler_maruyama", "ddim": "euler",
                "ddpm": "ancestral"}
    default_sampler = "euler"
    batch_coupled = ("rk45",)
    defaults = {"vp": {"beta_d": 19.9, "beta_min": 0.1, "eps_t": 1e-5, "M": 1000, "eps_s": 1e-3,
                       "rtol": 1e-5, "atol": 1e-5}}
    LABELS = {"ddim": "DDIM", "ddpm": "DDPM", "sde": "VP-SDE"}

    def __init__(self, cfg, data_shape):
        super().__init__(cfg, data_shape)
        self.p = dict(self.physics["vp"])

    authors_precond = "VPPrecond"

    @classmethod
    def from_authors(cls, get, D, source):
        if D is not None:
            raise UserError(f"{source} is a VP model (VPPrecond), which has no D; drop --D")
        return {"vp": {"beta_d": float(get("beta_d")), "beta_min": float(get("beta_min")), "M": int(get("M")),
                       "eps_t": float(get("epsilon_t"))}}, None

    def to_authors(self):
        p = self.p
        knobs = {"beta_d": p["beta_d"], "beta_min": p["beta_min"], "M": p["M"], "epsilon_t": p["eps_t"]}
        attrs = {**knobs, "sigma_min": float(self.sigma(p["eps_t"])), "sigma_max": float(self.sigma(1.0))}
        return "VPPrecond", attrs, knobs

    def sigma(self, t):
        return vp_sigma(t, self.p["beta_d"], self.p["beta_min"])

    def label(self, sampler=None):
        return self.LABELS.get(sampler, "VP-ODE")

    def training_example(self, y, generator, draw_data=None):
        """sigma = sigma(1 + u (eps_t - 1)), u ~ U(0, 1); x = y + sigma n; weight 1 / sigma^2 (EDM's VPLoss)."""
        u = rand(y.shape[0], generator, y.device)
        sigma = vp_sigma(1 + u.double() * (self.p["eps_t"] - 1), self.p["beta_d"], self.p["beta_min"]).to(y.dtype)
        n = randn(y.shape, generator, y.device, y.dtype)
        x = y + sigma.reshape(-1, *([1] * (y.dim() - 1))) * n
        return TrainingExample(x=x, t=sigma, target=y, weight=1 / sigma ** 2)

    def head(self, backbone, label_dim=0):
        from pfgmbench.nets.precond import VPPrecond

        return VPPrecond(backbone, self.p["beta_d"], self.p["beta_min"], self.p["M"], label_dim)

    def _sigma_range(self):
        return float(self.sigma(self.p["eps_t"])), float(self.sigma(1.0))

    def grid(self, steps, device="cpu", sampler=None):
        """The sampler's time grid, float64: noise levels sigma for ddpm / ddim, VP time t otherwise."""
        p = self.p
        if sampler == "ddpm":   # DDPM's discrete chain, then 0
            g = torch.cat([ddpm_sigmas(p["M"]).flip(0), torch.zeros(1, dtype=torch.float64)])
        elif sampler == "ddim":   # iDDPM levels inside the network's range, `steps` of them, then 0
            net_lo, net_hi = self._sigma_range()
            lo, hi = max(0.002, net_lo), min(81.0, net_hi)
            u = iddpm_sigmas(p["M"]).clone()
            u = u[(u >= lo) & (u <= hi)]
            idx = ((len(u) - 1) / (steps - 1) * torch.arange(steps, dtype=torch.float64)).round().to(torch.int64)
            g = torch.cat([u[idx], torch.zeros(1, dtype=torch.float64)])
        elif sampler == "rk45":
            g = torch.tensor([1.0, p["eps_s"]], dtype=torch.float64)
        elif sampler == "sde":   # score-SDE's Euler-Maruyama: `steps` calls at linspace(1, eps_s), each a step
            # of 1/steps; the last lands below eps_s and returns the step's mean (its noise removal)
            g = torch.cat([torch.linspace(1.0, p["eps_s"], steps, dtype=torch.float64),
                           torch.tensor([p["eps_s"] - 1.0 / steps], dtype=torch.float64)])
        else:   # VP discretisation: t_i = 1 + i / (T - 1) (eps_s - 1), then t = 0
            i = torch.arange(steps, dtype=torch.float64)
            g = torch.cat([1 + i / (steps - 1) * (p["eps_s"] - 1), torch.zeros(1, dtype=torch.float64)])
        return g.to(device)

    def prior(self, shape, generator, sampler=None):
        n = torch.randn(shape, generator=generator, dtype=torch.float64)
        if sampler in ("ddpm", "ddim"):
            return n * float(self.grid(2 if sampler == "ddim" else 1, sampler=sampler)[0])
        sigma = self.sigma(1.0)
        return n * sigma / (1 + sigma ** 2).sqrt()      # x(1) = s(1) sigma(1) n

    def beta(self, t):
        """beta(t) = beta_min + beta_d t: the VP SDE dx = -beta/2 x dt + sqrt(beta) dW."""
        return self.p["beta_min"] + self.p["beta_d"] * torch.as_tensor(t, dtype=torch.float64)

    def solver_options(self, sampler):
        if sampler == "sde":
            return {"diffusion": lambda t: self.beta(t).sqrt()}
        if sampler == "ddpm":
            return {"noise_up": ddpm_noise}
        return {"rtol": self.p["rtol"], "atol": self.p["atol"]} if sampler == "rk45" else {}

    def finish(self, model, x, grid, sampler=None):
        """RK45 stops at t = eps_s: one denoising step, x <- D(x / s; sigma) (score-SDE's noise removal)."""
        if sampler != "rk45":
            return x
        t = grid[-1]
        sigma = self.sigma(t)
        s = 1 / (1 + sigma ** 2).sqrt()
        ones = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
        return model(x / s, sigma * ones).to(torch.float64)

    def velocity(self, model, sampler=None):
        if sampler == "sde":
            def drift(x, t):
                """Reverse-SDE drift -beta/2 x - beta score, score = (s D(x / s; sigma) - x) / (s sigma)^2."""
                t = torch.as_tensor(t, dtype=torch.float64)
                sigma = self.sigma(t)
                s = 1 / (1 + sigma ** 2).sqrt()
                ones = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
                score = (s * model(x / s, sigma * ones).to(torch.float64) - x) / (s * sigma) ** 2
                return -0.5 * self.beta(t) * x - self.beta(t) * score
            return drift
        if sampler in ("ddpm", "ddim"):   # in sigma, unscaled: dx/dsigma = (x - D(x; sigma)) / sigma
            def v(x, sigma):
                ones = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
                return (x - model(x, sigma * ones).to(torch.float64)) / sigma
            return v
        bd, bm = self.p["beta_d"], self.p["beta_min"]

        def v(x, t):
            """dx/dt = (sigma'/sigma + s'/s) x - sigma' s / sigma D(x / s; sigma) (EDM eq. 4)."""
            t = torch.as_tensor(t, dtype=torch.float64)
            sigma = vp_sigma(t, bd, bm)
            dsigma = 0.5 * (bm + bd * t) * (sigma + 1 / sigma)
            s = 1 / (1 + sigma ** 2).sqrt()
            ds = -sigma * dsigma * s ** 3
            ones = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
            D = model(x / s, sigma * ones).to(torch.float64)
            return (dsigma / sigma + ds / s) * x - dsigma * s / sigma * D

        return v


class VE(Family):
    """Variance exploding (NCSN++ in the score-SDE paper), sampled as the VE-ODE: Euler on the VE
    discretisation with sigma(t) = sqrt(t) (or Heun / RK45)."""
    name = "ve"
    samplers = {"euler": "euler", "heun": "heun", "rk45": "rk45"}
    default_sampler = "euler"
    batch_coupled = ("rk45",)
    defaults = {"ve": {"sigma_min": 0.02, "sigma_max": 100.0, "rtol": 1e-5, "atol": 1e-5}}

    def __init__(self, cfg, data_shape):
        super().__init__(cfg, data_shape)
        self.p = dict(self.physics["ve"])

    def label(self, sampler=None):
        return "VE-ODE"

    authors_precond = "VEPrecond"

    @classmethod
    def from_authors(cls, get, D, source):
        if D is not None:
            raise UserError(f"{source} is a VE model (VEPrecond), which has no D; drop --D")
        return {"ve": {"sigma_min": float(get("sigma_min")), "sigma_max": float(get("sigma_max"))}}, None

    def to_authors(self):
        knobs = {"sigma_min": self.p["sigma_min"], "sigma_max": self.p["sigma_max"]}
        return "VEPrecond", dict(knobs), knobs

    def training_example(self, y, generator, draw_data=None):
        """sigma = sigma_min (sigma_max / sigma_min)^u, u ~ U(0, 1); weight 1 / sigma^2 (EDM's VELoss)."""
        p = self.p
        u = rand(y.shape[0], generator, y.device)
        sigma = p["sigma_min"] * (p["sigma_max"] / p["sigma_min"]) ** u
        n = randn(y.shape, generator, y.device, y.dtype)
        x = y + sigma.reshape(-1, *([1] * (y.dim() - 1))) * n
        return TrainingExample(x=x, t=sigma, target=y, weight=1 / sigma ** 2)

    def head(self, backbone, label_dim=0):
        from pfgmbench.nets.precond import VEPrecond

        return VEPrecond(backbone, label_dim)

    def grid(self, steps, device="cpu", sampler=None):
        """t_i = sigma_max^2 (sigma_min^2 / sigma_max^2)^(i / (T - 1)), then t = 0 (t = sigma^2)."""
        lo, hi = self.p["sigma_min"] ** 2, self.p["sigma_max"] ** 2
        if sampler == "rk45":
            return torch.tensor([hi, lo], dtype=torch.float64, device=device)
        i = torch.arange(steps, dtype=torch.float64)
        t = hi * (lo / hi) ** (i / (steps - 1))
        return torch.cat([t, torch.zeros(1, dtype=torch.float64)]).to(device)

    def prior(self, shape, generator, sampler=None):
        return self.p["sigma_max"] * torch.randn(shape, generator=generator, dtype=torch.float64)

    def solver_options(self, sampler):
        return {"rtol": self.p["rtol"], "atol": self.p["atol"]} if sampler == "rk45" else {}

    def finish(self, model, x, grid, sampler=None):
        """RK45 stops at sigma_min: one denoising step, x <- D(x; sigma_min) (score-SDE's noise removal)."""
        if sampler != "rk45":
            return x
        ones = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
        return model(x, grid[-1].sqrt() * ones).to(torch.float64)

    def velocity(self, model, sampler=None):
        def v(x, t):
            """dx/dt = (x - D(x; sqrt(t))) / (2 t)   (sigma(t) = sqrt(t): sigma'/sigma = 1/(2t))."""
            t = torch.as_tensor(t, dtype=torch.float64)
            ones = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
            return (x - model(x, t.sqrt() * ones).to(torch.float64)) / (2 * t)

        return v
