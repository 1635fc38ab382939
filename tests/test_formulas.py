"""Every formula and constant of REFERENCE sections 1-3 and 9 that the code implements, checked
against values computed here in closed form (numpy), never by calling the code under test twice.
A from-scratch proxy run learns around most of these, which is why each needs its own test."""
import math

import numpy as np
import pytest
import torch

from pfgmbench.config import resolve
from pfgmbench.generate import generate
from pfgmbench.loss import loss as family_loss
from pfgmbench.nets.precond import EDMPrecond
from pfgmbench.physics import build_family
from pfgmbench.train import Trainer, ema_beta, learning_rate

SD = 0.5
SIGMAS = np.array([0.002, 0.05, 0.5, 3.0, 80.0])


class Recording(torch.nn.Module):
    """A backbone that records what the head feeds it and returns a constant F."""

    def __init__(self, value):
        super().__init__()
        self.value, self.seen = value, {}

    def forward(self, x, c_noise, class_labels=None, augment_labels=None):
        self.seen = {"x": x.detach().clone(), "c_noise": c_noise.detach().clone()}
        return torch.full_like(x, self.value)


def _head(value):
    rec = Recording(value)
    return EDMPrecond(rec, sigma_data=SD), rec


def test_edm_preconditioning_coefficients():
    """c_skip = sd^2/(s^2+sd^2), c_out = s sd/sqrt(s^2+sd^2), c_in = 1/sqrt(s^2+sd^2), c_noise = ln(s)/4."""
    s = torch.tensor(SIGMAS, dtype=torch.float32)
    x = torch.ones(len(SIGMAS), 3) * 2.0
    zero, rec = _head(0.0)
    d0 = zero(x, s)
    c_in = rec.seen["x"][:, 0].double().numpy() / 2.0
    np.testing.assert_allclose(c_in, 1 / np.sqrt(SIGMAS ** 2 + SD ** 2), rtol=1e-6)
    np.testing.assert_allclose(rec.seen["c_noise"].double().numpy(), np.log(SIGMAS) / 4, rtol=1e-6, atol=1e-7)
    c_skip = d0[:, 0].double().numpy() / 2.0
    np.testing.assert_allclose(c_skip, SD ** 2 / (SIGMAS ** 2 + SD ** 2), rtol=1e-6)
    one, _ = _head(1.0)
    c_out = one(torch.zeros_like(x), s)[:, 0].double().numpy()     # D(0; s) = c_out F with F = 1
    np.testing.assert_allclose(c_out, SIGMAS * SD / np.sqrt(SIGMAS ** 2 + SD ** 2), rtol=1e-5)


def _family(preset="digits-tiny", D=math.inf, shape=(1, 8, 8)):
    return build_family(resolve(preset, D=D), shape)


def test_loss_weight_and_the_loss_itself():
    """lambda(s) = (s^2 + sd^2) / (s sd)^2; L = lambda ||D(x; s) - y||^2 summed over pixels."""
    fam = _family()
    y = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ex = fam.training_example(y, torch.Generator().manual_seed(1))
    s = ex.t.double().numpy()
    np.testing.assert_allclose(ex.weight.double().numpy(), (s ** 2 + SD ** 2) / (s * SD) ** 2, rtol=1e-5)
    assert torch.equal(ex.target, y)
    # a denoiser that returns zeros: the loss is lambda * ||y||^2 per example
    got = family_loss(lambda x, t, labels, aug: torch.zeros_like(x), ex).double().numpy()
    want = (s ** 2 + SD ** 2) / (s * SD) ** 2 * (y.double() ** 2).flatten(1).sum(1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_training_sigma_law_has_the_stated_log_moments():
    """ln sigma ~ N(P_mean = -1.2, P_std = 1.2)."""
    fam = _family()
    ex = fam.training_example(torch.zeros(100_000, 1, 8, 8), torch.Generator().manual_seed(3))
    ln = ex.t.double().log()
    assert ln.mean().item() == pytest.approx(-1.2, abs=0.015)
    assert ln.std().item() == pytest.approx(1.2, abs=0.015)


def test_perturbation_is_the_kernel_around_the_data_at_sigma():
    """x - y has the kernel's radius for the drawn sigma: at D = inf, ||x - y||^2 / sigma^2 ~ chi^2_N."""
    fam = _family()
    y = torch.randn(20_000, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    ex = fam.training_example(y, torch.Generator().manual_seed(5))
    r2 = ((ex.x - y).double().flatten(1).square().sum(1) / ex.t.double() ** 2).numpy()
    assert r2.mean() == pytest.approx(64, rel=0.01) and r2.var() == pytest.approx(128, rel=0.05)


@pytest.mark.parametrize("preset", ["cifar10-ncsnpp", "digits-table"])
def test_learning_rate_ramp_in_images(preset):
    t = resolve(preset)["train"]
    ramp = t["lr_rampup_kimg"] * 1000
    for images in (0, 1, ramp / 4, ramp / 2, ramp, 3 * ramp):
        assert learning_rate(t, images) == pytest.approx(t["lr"] * min(images / ramp, 1.0), rel=1e-12)


def test_ema_half_life_in_images_with_ramp_up():
    """beta = 0.5^(batch / h), h = min(halflife_kimg * 1000, images * rampup_ratio) images."""
    t = resolve("cifar10-ncsnpp")["train"]          # half-life 500 kimg, ramp-up 0.05, batch 512
    for images, h in ((1e5, 5e3), (1e6, 5e4), (2e7, 5e5), (1e8, 5e5)):
        assert ema_beta(t, images, 512) == pytest.approx(0.5 ** (512 / h), rel=1e-12)
    assert ema_beta(t, 1e8, 512) > 0.999     # half a million images: the EMA is not the raw network


def test_trainer_applies_the_lr_and_the_ema_decay():
    cfg = resolve("digits-tiny", sets=["train.lr_rampup_kimg=1.0", "train.ema_halflife_kimg=0.5",
                                       "train.ema_rampup_ratio=0.0"])
    tr = Trainer(cfg)
    tr.images = 256
    with torch.no_grad():
        for pe, pn in zip(tr.ema.parameters(), tr.net.parameters()):
            pe.zero_()
            pn.fill_(1.0)
    tr.update_ema()
    beta = 0.5 ** (64 / 500)
    assert all(torch.allclose(p, torch.full_like(p, 1 - beta)) for p in tr.ema.parameters())
    tr.step()
    assert tr.opt.param_groups[0]["lr"] == pytest.approx(2e-3 * 256 / 1000, rel=1e-12)


def test_edm_sigma_schedule_every_step():
    fam = _family()
    T = 18
    t = fam.grid(T).numpy()
    i = np.arange(T)
    want = (80 ** (1 / 7) + i / (T - 1) * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    np.testing.assert_allclose(t[:-1], want, rtol=1e-12)
    assert t[-1] == 0 and len(t) == T + 1


def test_alpha_noise_is_added_before_each_step_from_the_seed_generator():
    """x <- x + alpha t_i eps_i before each step, eps_i drawn after the prior from seed's generator.
    With a denoiser D(x) = x the velocity is zero, so x_T = x_0 + sum_i alpha t_i eps_i."""
    fam = _family()
    T, alpha, seed = 6, 0.3, 11
    x, _, nfe = generate(fam, lambda x, t, c=None: x, [seed], T, "heun", alpha=alpha)
    g = torch.Generator().manual_seed(seed)
    want = 80 * torch.randn((1, 8, 8), generator=g, dtype=torch.float64).numpy()
    i = np.arange(T)
    ts = (80 ** (1 / 7) + i / (T - 1) * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    for ti in ts:
        want = want + alpha * ti * torch.randn((1, 8, 8), generator=g, dtype=torch.float64).numpy()
    np.testing.assert_allclose(x[0].numpy(), want, rtol=1e-12)
    assert nfe == 2 * T - 1


@pytest.mark.parametrize("sampler,T,nfe", [("heun", 18, 35), ("heun", 40, 79), ("euler", 18, 18)])
def test_nfe_per_sampler(sampler, T, nfe):
    calls = []

    def model(x, t, c=None):
        calls.append(1)
        return x * 0

    _, _, counted = generate(_family(), model, [0, 1, 2], T, sampler)
    assert counted == nfe == len(calls)


def test_prior_radius_at_sigma_max():
    """D = inf: x0 = sigma_max n, so ||x0||^2 / 80^2 ~ chi^2_N; finite D: R^2 / (80^2 D) ~ BetaPrime(N/2, D/2)."""
    import scipy.stats as st

    fam = _family()
    g = torch.Generator().manual_seed(2)
    x0 = fam.prior((20_000, 1, 8, 8), g)
    assert x0.dtype == torch.float64
    r2 = (x0.flatten(1).square().sum(1) / 80 ** 2).numpy()
    assert st.kstest(r2, st.chi2(64).cdf).pvalue > 1e-3
    fam = _family(D=32.0)
    x0 = fam.prior((20_000, 1, 8, 8), g)
    ratio = (x0.flatten(1).square().sum(1) / (80 ** 2 * 32)).numpy()
    assert st.kstest(ratio, st.betaprime(32, 16).cdf).pvalue > 1e-3


@pytest.mark.parametrize("bits", [2, 5, 8])
def test_each_quantisation_step(bits):
    """scale = (max - min)/(2^b - 1); zp = int(clamp(-min/scale, 0, 2^b - 1)) (truncation);
    q = round(clamp(zp + w/scale, 0, 2^b - 1)); w' = scale (q - zp) — numpy, step by step."""
    from pfgmbench.quantize import fake_quantize

    w = torch.randn(300, generator=torch.Generator().manual_seed(bits)) * 0.7 + 0.3
    v = w.double().numpy()
    levels = 2 ** bits - 1
    scale = (v.max() - v.min()) / levels
    zp = float(int(np.clip(-v.min() / scale, 0, levels)))
    q = np.round(np.clip(zp + v / scale, 0, levels))
    np.testing.assert_allclose(fake_quantize(w, bits).double().numpy(), scale * (q - zp), rtol=1e-5, atol=1e-6)


def test_heun_step_is_the_trapezoidal_rule():
    """One Heun step of dx/dt = a x from t0 to t1 (t1 != 0): x (1 + h a + (h a)^2 / 2); onto t = 0: Euler."""
    from pfgmbench.solvers import euler, heun

    a, x0 = -0.7, torch.tensor([[2.0]], dtype=torch.float64)
    grid = torch.tensor([1.0, 0.5], dtype=torch.float64)
    h = -0.5
    got = heun(lambda x, t: a * x, grid, x0)
    assert got.item() == pytest.approx(2.0 * (1 + h * a + (h * a) ** 2 / 2), rel=1e-12)
    onto_zero = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert heun(lambda x, t: a * x, onto_zero, x0).item() == pytest.approx(2.0 * (1 - a), rel=1e-12)
    assert euler(lambda x, t: a * x, grid, x0).item() == pytest.approx(2.0 * (1 + h * a), rel=1e-12)


def test_ancestral_step_splits_the_noise_level():
    """DDPM / Euler-ancestral from s to s': sigma_up = min(s', sqrt(s'^2 (s^2 - s'^2) / s^2)),
    sigma_down = sqrt(s'^2 - sigma_up^2); x' = x + (sigma_down - s) v + sigma_up n."""
    from pfgmbench.solvers import ancestral

    s, s2 = 3.0, 1.2
    up = min(s2, math.sqrt(s2 ** 2 * (s ** 2 - s2 ** 2) / s ** 2))
    down = math.sqrt(s2 ** 2 - up ** 2)
    x0 = torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    n = torch.tensor([0.3, 0.7], dtype=torch.float64)
    grid = torch.tensor([s, s2, 0.0], dtype=torch.float64)
    calls = []

    def v(x, t):
        calls.append(x.clone())
        return torch.full_like(x, 0.25)

    out = ancestral(v, grid, x0, noise=lambda shape: n)
    first = x0 + (down - s) * 0.25 + up * n
    np.testing.assert_allclose(calls[1].numpy(), first.numpy(), rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), (first + (0 - s2) * 0.25).numpy(), rtol=1e-12)   # last step: no noise


def test_min_top3_and_disjoint_seed_ranges(monkeypatch):
    """Min = best checkpoint, Top-3 = mean of the three best (none from fewer); EDM's repeated seed
    ranges never share a seed, whatever the list."""
    import pfgmbench.evaluate as ev
    from pfgmbench.seeds import format_seeds, parse_seeds

    assert ev.min_and_top3([3.0, 1.0, 2.0, 5.0]) == (1.0, 2.0)
    assert ev.min_and_top3([2.0, 1.0]) == (1.0, None)
    seen = []

    def fake_score(scorer, snap, seeds, *a, **k):
        seen.append(list(seeds))
        return {"checkpoint": snap, "value": float(len(seen)), "n": len(seeds)}

    monkeypatch.setattr(ev, "score_snapshot", fake_score)
    scorer = type("S", (), {"metric": "fid"})()
    res = ev.evaluate_run(scorer, ["a", "b"], [0, 2], seed_ranges=3)
    assert seen[:3] == [[0, 2], [3, 5], [6, 8]]
    assert res["per_checkpoint"] == {"a": 1.0, "b": 4.0} and res["min"] == 1.0 and res["top3_mean"] is None
    for text in ("0-999", "0,3,7-9", "5"):
        assert format_seeds(parse_seeds(text)) == text


def test_set_takes_exponent_numbers():
    """YAML 1.1 reads 1e-3 as a string; --set train.lr=1e-3 is still the number 0.001."""
    cfg = resolve("digits-tiny", sets=["train.lr=1e-3", "train.batch=6.4e1", "physics.D=inf"])
    assert cfg["train"]["lr"] == 0.001 and cfg["train"]["batch"] == 64 and isinstance(cfg["train"]["batch"], int)
    assert math.isinf(cfg["physics"]["D"])
