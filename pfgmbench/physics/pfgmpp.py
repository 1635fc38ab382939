"""PFGM++ (REFERENCE 1): the finite-D perturbation kernel, prior, exact empirical posterior, and
the family that trains and samples it. D = inf is EDM: this module is the only place that knows.

Everything radial is drawn in float64; beta is never clipped to [1e-3, 1 - 1e-3] (that makes
every radius equal at D = 3,072,000), only kept off exact 0.
"""
import math

import torch

from pfgmbench.errors import UserError
from pfgmbench.physics.base import Family, TrainingExample
from pfgmbench.physics.random import gamma, randn


def is_edm(D):
    return math.isinf(D)


def parse_D(value):
    """'inf' (EDM) or a real number >= 1 (REFERENCE 1: Beta(N/2, D/2) needs D > 0; D >= 1 as in PFGM++)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("inf", "infinity", "edm"):
            return math.inf
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"D must be a number >= 1 or 'inf', got '{value}'") from None
    value = float(value)
    if math.isnan(value) or value < 1:
        raise UserError(f"D must be >= 1 or 'inf' (EDM), got {value:g}; PFGM++ needs a positive "
                        "augmented dimension, e.g. --D 128")
    return value


def parse_D_list(text):
    """'64,128,2048,inf' -> [64.0, 128.0, 2048.0, inf] (each checked by parse_D)."""
    try:
        vals = [parse_D(v) for v in str(text).split(",") if v.strip()]
    except UserError as e:
        raise UserError(f"--values: {e}") from None
    if not vals:
        raise UserError("--values needs at least one D, e.g. 64,128,2048,inf")
    return vals


def radius_ratio_sq(batch, N, D, generator=None, device="cpu"):
    """R^2 / r^2 = beta / (1 - beta) with beta ~ Beta(N/2, D/2), i.e. BetaPrime(N/2, D/2). float64."""
    g_a = gamma(torch.full((batch,), N / 2, dtype=torch.float64, device=device), generator)
    g_b = gamma(torch.full((batch,), D / 2, dtype=torch.float64, device=device), generator)
    return g_a / g_b.clamp_min(torch.finfo(torch.float64).tiny)


def uniform_direction(shape, generator=None, device="cpu", dtype=torch.float64):
    """Unit vectors uniform on the sphere S^(N-1), one per row: a normalised Gaussian."""
    u = randn(shape, generator, device, dtype)
    return u / u.flatten(1).norm(dim=1).reshape(-1, *([1] * (len(shape) - 1)))


def perturb(y, sigma, D, generator=None):
    """x = y + R u with R = r sqrt(beta/(1-beta)), r = sigma sqrt(D)   (PFGM++ eq. training kernel).

    D = inf: x = y + sigma n, n ~ N(0, I) (EDM).  `sigma` has shape (B,).
    """
    B = y.shape[0]
    view = (B,) + (1,) * (y.dim() - 1)
    if is_edm(D):
        n = randn(y.shape, generator, y.device, y.dtype)
        return y + sigma.reshape(view) * n
    N = y[0].numel()
    r = sigma.to(torch.float64) * math.sqrt(D)
    R = r * radius_ratio_sq(B, N, D, generator, y.device).sqrt()
    u = uniform_direction(y.shape, generator, y.device)
    return y + (R.reshape(view) * u).to(y.dtype)


def draw_sigma(batch, P_mean, P_std, generator=None, device="cpu"):
    """ln sigma ~ N(P_mean, P_std^2) (EDM training distribution)."""
    n = randn(batch, generator, device)
    return (P_mean + P_std * n).exp()


def edm_loss_weight(sigma, sigma_data):
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 (EDM eq. 8 / Table 1)."""
    return (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2


def prior(shape, sigma_max, D, generator=None, device="cpu"):
    """Start of sampling, float64: x0 = R u with r_max = sigma_max sqrt(D); D = inf: sigma_max n."""
    if is_edm(D):
        return sigma_max * randn(shape, generator, device, torch.float64)
    N = math.prod(shape[1:])
    r_max = sigma_max * math.sqrt(D)
    R = r_max * radius_ratio_sq(shape[0], N, D, generator, device).sqrt()
    return R.reshape(-1, *([1] * (len(shape) - 1))) * uniform_direction(shape, generator, device)


def edm_sigma_steps(T, sigma_min=0.002, sigma_max=80.0, rho=7.0, device="cpu"):
    """t_i = (smax^(1/rho) + i/(T-1) (smin^(1/rho) - smax^(1/rho)))^rho, i < T; t_T = 0 (EDM eq. 5)."""
    i = torch.arange(T, dtype=torch.float64, device=device)
    t = (sigma_max ** (1 / rho) + i / (T - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64, device=device)])


def posterior_weights(x, points, sigma, D):
    """p(y_i | x) for the empirical data set {y_i}: (||x - y_i||^2 + r^2)^(-(N+D)/2), normalised.

    D = inf: softmax of -||x - y_i||^2 / (2 sigma^2). x: (B, ...), points: (M, ...), sigma: (B,).
    """
    xf = x.flatten(1).to(torch.float64)
    pf = points.flatten(1).to(torch.float64)
    d2 = torch.cdist(xf, pf).square()
    s = sigma.to(torch.float64).reshape(-1, 1)
    if is_edm(D):
        logits = -d2 / (2 * s * s)
    else:
        N = pf.shape[1]
        logits = -(N + D) / 2 * torch.log(d2 + s * s * D)
    return torch.softmax(logits, dim=1)


def exact_denoiser(points, D):
    """D*(x; sigma) = sum_i p(y_i | x) y_i: the optimal denoiser for a finite data set."""
    pf = points.flatten(1).to(torch.float64)

    def denoise(x, sigma, class_labels=None):
        w = posterior_weights(x, points, sigma, D)
        return (w @ pf).reshape(x.shape).to(x.dtype)

    return denoise


class PFGMPP(Family):
    """PFGM++ at augmented dimension D, trained and sampled in EDM's parameterisation (the network
    is a denoiser conditioned on sigma = r / sqrt(D)); D = inf is EDM."""
    name = "pfgmpp"
    knob_names = ("D",)

    def __init__(self, cfg, data_shape):
        super().__init__(cfg, data_shape)
        self.D = float(self.physics["D"])

    def label(self, sampler=None):
        return "EDM" if is_edm(self.D) else "PFGM++"

    @classmethod
    def check_config(cls, cfg):
        cfg["physics"]["D"] = parse_D(cfg["physics"]["D"])

    authors_precond = "EDMPrecond"

    @classmethod
    def from_authors(cls, get, D, source):
        """EDM's own EDMPrecond is D = inf; the PFGM++ fork's records pfgmpp=True and its D."""
        recorded = math.inf if not get("pfgmpp") else (None if get("D") is None else float(get("D")))
        if recorded is not None and D is not None and D != recorded:
            raise UserError(f"{source} was trained with D={recorded:g}, but D={D:g} was requested; "
                            f"drop --D or pass --D {recorded:g}")
        if recorded is None and D is None:
            raise UserError(f"{source} is a PFGM++ model that does not record its D; pass --D (the value it "
                            "was trained with, e.g. --D 2048)")
        return {"D": recorded if recorded is not None else D, "sigma_data": float(get("sigma_data"))}, recorded

    def to_authors(self):
        fork = {} if is_edm(self.D) else {"pfgmpp": True, "D": int(self.D) if self.D.is_integer() else self.D}
        knobs = {"sigma_min": 0, "sigma_max": math.inf, "sigma_data": float(self.physics["sigma_data"])}
        attrs = {**fork, **knobs, **({"N": self.N} if fork else {})}
        return "EDMPrecond", attrs, {**fork, **knobs}

    THIN_TAIL_D = 16    # REFERENCE 9: P(R > s) decays like s^-D; below ~16 the radii are heavy-tailed

    @classmethod
    def method_name(cls, knobs, sampler=None):
        return "EDM" if is_edm(float(knobs.get("D", math.inf))) else "PFGM++"

    @classmethod
    def note(cls, knobs):
        D = float(knobs.get("D", math.inf))
        return f"heavy-tailed kernel (D < {cls.THIN_TAIL_D})" if D < cls.THIN_TAIL_D else ""

    @classmethod
    def proxy_knobs(cls, knobs, N, paper_N):
        """D scaled so that D/N matches the paper: D_proxy = D_paper N / paper_N (inf stays inf)."""
        D = float(knobs["D"])
        if is_edm(D):
            return {"D": D}
        proxy = D * N / paper_N
        if proxy < 1:
            raise UserError(f"paper D={D:g} maps to D={proxy:.3g} < 1 at N={N} (D/N kept as in the paper's "
                            f"N={paper_N}); drop it or pass --absolute")
        return {"D": round(proxy, 4)}

    def training_example(self, y, generator, draw_data=None):
        p = self.physics
        sigma = draw_sigma(y.shape[0], p["P_mean"], p["P_std"], generator, y.device)
        x = perturb(y, sigma, self.D, generator)
        return TrainingExample(x=x, t=sigma, target=y, weight=edm_loss_weight(sigma, p["sigma_data"]))

    def head(self, backbone, label_dim=0):
        from pfgmbench.nets.precond import EDMPrecond

        return EDMPrecond(backbone, sigma_data=self.physics["sigma_data"], label_dim=label_dim)

    def prior(self, shape, generator, sampler=None):
        return prior(shape, self.sampling["sigma_max"], self.D, generator=generator)

    def grid(self, steps, device="cpu", sampler=None):
        s = self.sampling
        return edm_sigma_steps(steps, s["sigma_min"], s["sigma_max"], s["rho"], device)

    step_noise_defined = True

    def step_noise(self, x, t, alpha, eps):
        """PFGM++'s robustness test: x <- x + alpha t_i eps before each step (t_i = sigma_i)."""
        return x + alpha * t * eps

    def velocity(self, model, sampler=None):
        """The probability-flow ODE in sigma: dx/dsigma = (x - D(x; sigma)) / sigma (EDM eq. 3)."""
        def v(x, t):
            ones = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
            return (x - model(x, t * ones).to(torch.float64)) / t

        return v


class EDM(PFGMPP):
    """EDM (Karras et al. 2022): PFGM++ in the limit D -> inf (`--family edm` is `--D inf`)."""
    name = "edm"

    @classmethod
    def configure(cls, cfg, D=None):
        cfg["physics"]["D"] = math.inf
        return cfg

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        if not is_edm(float(cfg["physics"]["D"])):
            raise UserError(f"family edm is PFGM++ at D = inf, but D = {cfg['physics']['D']:g}; "
                            "drop --D, or use --family pfgmpp")
