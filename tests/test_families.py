"""Original PFGM and the score-SDE baselines (VP: VP-ODE / DDIM / DDPM; VE: VE-ODE): their laws,
fields and samplers against closed forms and exact denoisers (REFERENCE 4, 5)."""
import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from pfgmbench.generate import generate
from pfgmbench.nets.precond import VEPrecond, VPPrecond
from pfgmbench.physics.pfgm import PFGM, empirical_field, hyperparameters, perturb
from pfgmbench.physics.sde import VE, VP, iddpm_sigmas, vp_sigma, vp_sigma_inv


def _cfg(family, **physics):
    base = {"pfgm": dict(PFGM.defaults["pfgm"]), "vp": dict(VP.defaults["vp"]), "ve": dict(VE.defaults["ve"])}
    for k, v in physics.items():
        base[family][k] = v
    return {"physics": {"family": family, **base}, "sample": {}}


# --- PFGM -----------------------------------------------------------------------------------------

def test_empirical_field_matches_a_direct_computation_and_points_to_the_data():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(7, 5, generator=g, dtype=torch.float64)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64) * 3
    z = torch.tensor([0.5, 2.0, 10.0], dtype=torch.float64)
    got = empirical_field(x, z, pts, 5.0).numpy()
    for b in range(3):   # E = sum_i w_i ((p_i, 0) - (x, z)), w_i ∝ |(x, z) - (p_i, 0)|^-(N+1)
        diff = np.concatenate([pts.numpy() - x[b].numpy(), np.full((7, 1), -z[b].item())], axis=1)
        d = np.linalg.norm(diff, axis=1)
        w = d ** -6.0
        E = (w[:, None] * diff).sum(0) / w.sum()
        want = math.sqrt(5) * E / (np.linalg.norm(E) + 5.0)
        np.testing.assert_allclose(got[b], want, rtol=1e-10)
        assert np.linalg.norm(got[b]) < math.sqrt(5)                     # normalised length < sqrt(N)
        assert got[b][-1] < 0                                            # toward the z = 0 data plane
    far = empirical_field(torch.full((1, 5), 1e3, dtype=torch.float64), torch.tensor([1e3], dtype=torch.float64),
                          pts, 5.0)
    assert torch.norm(far) == pytest.approx(math.sqrt(5), rel=0.01)    # |E| >> gamma: length sqrt(N)


def test_empirical_field_is_stable_in_high_dimension():
    """N = 3072: the raw weights d^-(N+1) underflow to 0 in float64; the log-space form does not."""
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(64, 3072, generator=g, dtype=torch.float64)
    x = pts[:4] + 0.3 * torch.randn(4, 3072, generator=g, dtype=torch.float64)
    f = empirical_field(x, torch.full((4,), 0.1, dtype=torch.float64), pts, 5.0)
    assert torch.isfinite(f).all()
    # the nearest source dominates: the field points at the point each x was made from
    toward = (pts[:4] - x) / (pts[:4] - x).norm(dim=1, keepdim=True)
    cos = (f[:, :-1] * toward).sum(1) / f[:, :-1].norm(dim=1)
    assert (cos > 0.99).all()


def test_perturbation_law():
    """x~ = y + |eps_x| (1+tau)^m u, z~ = |eps_z| (1+tau)^m, m ~ U[0, M], redrawn from U[0, 0.7 M] where
    |eps_z| < 0.005. At N = 1000, |eps_x| ~ sigma sqrt(N) to 2%, so m and |eps_z| can be read back."""
    g = torch.Generator().manual_seed(2)
    x, z = perturb(torch.zeros(20_000, 1000), 291, 0.01, 0.03, 0.7, g)
    m = (torch.log(x.double().norm(dim=1)) - math.log(0.01 * math.sqrt(1000))) / math.log(1.03)
    ez = z / 1.03 ** m                 # read back to ~3% (m to ~0.8 steps), so keep clear of the 0.005 edge
    small, large = ez < 0.0045, ez > 0.0055
    assert (ez < 0.005).float().mean().item() == pytest.approx(2 * st.norm.cdf(0.5) - 1, abs=0.02)   # P(|N| < 0.5)
    assert m[small].max().item() < int(0.7 * 291) + 3
    assert m[large].mean().item() == pytest.approx(291 / 2, abs=3) and m[large].max().item() > 280
    assert m[small].mean().item() == pytest.approx(int(0.7 * 291) / 2, abs=3)
    assert ez[large].mean().item() == pytest.approx(0.01 * st.norm.pdf(0.55) / st.norm.sf(0.55), rel=0.05)


def test_hyperparameter_rules():
    """M = int(0.75 ln(norm^2 / (2 sqrt(N) sigma^2)) / ln(1 + tau)) + 1; z_max = sqrt(2/pi) sigma (1+tau)^M;
    upper_norm = sqrt(N) sigma (1+tau)^M (PFGM appendix B)."""
    h = hyperparameters(30.0, 3072)
    M = int(0.75 * np.log(900 / (2 * np.sqrt(3072) * 1e-4)) / np.log(1.03)) + 1
    assert h["M"] == M == 287
    assert h["z_max"] == pytest.approx(np.sqrt(2 / np.pi) * 0.01 * 1.03 ** M)
    assert h["upper_norm"] == pytest.approx(np.sqrt(3072) * 0.01 * 1.03 ** M)


def test_hemisphere_prior_radial_law():
    """R = z_max sqrt(B / (1 - B)), B ~ Beta(N/2, 1/2): R^2 / z_max^2 ~ BetaPrime(N/2, 1/2) (clipped to [1, upper])."""
    N = 16
    fam = PFGM(_cfg("pfgm", M=100, z_max=4.0, upper_norm=1e9), (N,))
    x0 = fam.prior((20_000, N), torch.Generator().manual_seed(3))
    assert x0.shape == (20_000, N + 1) and torch.all(x0[:, -1] == 4.0)
    R2 = (x0[:, :N].norm(dim=1) ** 2 / 16).numpy()
    keep = R2 > 1 / 16
    ks = st.kstest(R2[keep], lambda r: (st.betaprime(N / 2, 0.5).cdf(r) - st.betaprime(N / 2, 0.5).cdf(1 / 16))
                   / (1 - st.betaprime(N / 2, 0.5).cdf(1 / 16)))
    assert ks.pvalue > 1e-3
    clipped = PFGM(_cfg("pfgm", M=100, z_max=4.0, upper_norm=5.0), (N,)).prior((5000, N), torch.Generator().manual_seed(4))
    r = clipped[:, :N].norm(dim=1)
    assert r.max() <= 5.0 + 1e-9 and r.min() >= 1.0 - 1e-9


@pytest.mark.parametrize("sampler", ["rk45", "heun"])
def test_ln_z_ode_with_the_exact_field_carries_the_prior_onto_a_2d_point_set(sampler):
    pts = torch.tensor([[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8]], dtype=torch.float64)
    fam = PFGM(_cfg("pfgm", M=150, z_max=6.0, upper_norm=40.0, z_exp=0.0), (2,))

    def exact(x, z, labels=None):
        return empirical_field(x, z, pts, 5.0)

    x, _, nfe = generate(fam, exact, list(range(300)), 200, sampler)
    d = torch.cdist(x, pts).min(1).values
    assert (d < 0.05).float().mean() > 0.97, d.max()
    counts = np.bincount(torch.cdist(x, pts).argmin(1).numpy(), minlength=3)
    assert counts.min() > 50, counts          # every point is reached
    assert nfe > 10 if sampler == "rk45" else nfe == 400     # Heun: two evaluations per step (no t = 0 end)


# --- VP / VE --------------------------------------------------------------------------------------

def test_vp_sigma_and_its_inverse():
    t = torch.linspace(1e-5, 1, 101, dtype=torch.float64)
    s = vp_sigma(t)
    np.testing.assert_allclose(s.numpy(), np.sqrt(np.exp(0.5 * 19.9 * t.numpy() ** 2 + 0.1 * t.numpy()) - 1), rtol=1e-12)
    np.testing.assert_allclose(vp_sigma_inv(s).numpy(), t.numpy(), rtol=1e-9)


def test_vp_and_ve_preconditioning():
    class Rec(torch.nn.Module):
        def forward(self, x, c_noise, class_labels=None, augment_labels=None):
            self.x, self.c = x, c_noise
            return torch.ones_like(x)

    s = torch.tensor([0.01, 1.0, 50.0])
    x = torch.full((3, 2), 2.0)
    rec = Rec()
    out = VPPrecond(rec)(x, s)
    np.testing.assert_allclose(rec.x[:, 0].numpy(), 2 / np.sqrt(s.numpy() ** 2 + 1), rtol=1e-6)     # c_in
    np.testing.assert_allclose(rec.c.numpy(), 999 * vp_sigma_inv(s.double()).numpy(), rtol=5e-4)  # c_noise (float32)
    np.testing.assert_allclose(out[:, 0].numpy(), 2 - s.numpy(), rtol=1e-6)                        # skip 1, out -s
    out = VEPrecond(rec)(x, s)
    np.testing.assert_allclose(rec.c.numpy(), np.log(s.numpy() / 2), rtol=1e-6)
    np.testing.assert_allclose(out[:, 0].numpy(), 2 + s.numpy(), rtol=1e-6)                        # skip 1, out s, in 1


def test_vp_and_ve_training_laws():
    y = torch.zeros(100_000, 2)
    ex = VP(_cfg("vp"), (2,)).training_example(y, torch.Generator().manual_seed(0))
    t = vp_sigma_inv(ex.t.double())
    assert t.min() >= 1e-5 - 1e-9 and t.max() <= 1
    assert t.mean().item() == pytest.approx(0.5, abs=0.005)      # t uniform on [eps_t, 1]
    np.testing.assert_allclose(ex.weight.numpy(), 1 / ex.t.numpy() ** 2, rtol=1e-5)
    ex = VE(_cfg("ve"), (2,)).training_example(y, torch.Generator().manual_seed(1))
    u = torch.log(ex.t.double() / 0.02) / math.log(100 / 0.02)   # log-uniform sigma on [0.02, 100]
    assert u.min() >= 0 and u.max() <= 1 and u.mean().item() == pytest.approx(0.5, abs=0.005)
    assert (ex.x.double().std(0) > 10).all()


def _gaussian_denoiser(s):
    return lambda x, sigma, c=None: x * (s * s / (s * s + sigma.reshape(-1, 1) ** 2))


@pytest.mark.parametrize("family,sampler,steps,nfe", [("vp", "ddpm", 0, 1000), ("vp", "ddim", 400, 400),
                                                       ("vp", "sde", 1000, 1000),
                                                       ("vp", "euler", 256, 256), ("ve", "euler", 2048, 2048),
                                                       ("vp", "heun", 64, 127)])
def test_samplers_recover_a_gaussian_with_the_exact_denoiser(family, sampler, steps, nfe):
    """Data N(0, s^2 I): D(x; sigma) = s^2 / (s^2 + sigma^2) x. Every sampler returns std s within 2%
    (Euler on VE's t = sigma^2 grid is first order and slow to converge: 256 steps are 8% off)."""
    s = 0.5
    fam = (VP if family == "vp" else VE)(_cfg(family), (16,))
    x, _, counted = generate(fam, _gaussian_denoiser(s), list(range(3000)), steps, sampler)
    assert counted == nfe
    assert x.std().item() == pytest.approx(s, rel=0.02)
    assert abs(x.mean().item()) < 0.02


def test_ddim_is_deterministic_per_seed_and_ddpm_draws_from_the_seed():
    fam = VP(_cfg("vp"), (4,))
    den = _gaussian_denoiser(0.5)
    a, _, nfe = generate(fam, den, [0, 1, 2, 3], 50, "ddim")
    assert nfe == 50
    b, _, _ = generate(fam, den, [2, 3], 50, "ddim")
    assert torch.equal(a[2:], b)
    c, _, _ = generate(fam, den, [0, 1, 2, 3], 100, "ddpm")
    d, _, _ = generate(fam, den, [3, 2], 100, "ddpm")
    assert torch.equal(c[3], d[0]) and torch.equal(c[2], d[1])


def test_iddpm_levels():
    u = iddpm_sigmas(1000)
    assert u[-1] == 0 and torch.all(u[:-1] > u[1:])
    assert u[0] > 1e3 and 50 < u[10] < 81     # u_0 blows up through the clip C_1; the range filter drops it
    grid = VP(_cfg("vp"), (4,)).grid(50, sampler="ddim")
    assert len(grid) == 51 and grid[-1] == 0 and grid[0] <= 81 and grid[-2] >= 0.002


def test_rk45_counts_its_function_evaluations():
    fam = VE(_cfg("ve"), (8,))
    calls = []

    def den(x, sigma, c=None):
        calls.append(1)
        return _gaussian_denoiser(0.5)(x, sigma)

    x, _, nfe = generate(fam, den, list(range(200)), 0, "rk45")
    assert nfe == len(calls) > 10
    assert x.std().item() == pytest.approx(0.5, rel=0.03)


# --- the command line, end to end on tiny models ----------------------------------------------------

def test_train_and_sample_every_family_from_the_cli(tmp_path):
    import json

    import yaml
    from conftest import run_cli

    common = ["--preset", "digits-tiny", "--kimg", "0.128", "--quiet", "--set", "train.snapshot_kimg=0.128",
              "--set", "train.checkpoint_kimg=0.128"]
    p = run_cli("train", *common, "--family", "pfgm", "--set", "physics.pfgm.big_batch=256", "--out", tmp_path / "pfgm")
    assert p.returncode == 0, p.stderr
    cfg = yaml.safe_load((tmp_path / "pfgm" / "config.yaml").read_text())["physics"]["pfgm"]
    assert cfg["M"] > 100 and cfg["z_max"] > 1 and cfg["upper_norm"] > cfg["z_max"]   # filled from the data
    for family in ("vp", "ve"):
        p = run_cli("train", *common, "--family", family, "--out", tmp_path / family)
        assert p.returncode == 0, p.stderr
    for run, sampler, steps, nfe in (("pfgm", "euler", 6, 6), ("pfgm", "rk45", None, None), ("vp", "ddim", 8, 8),
                                     ("vp", "ddpm", None, 1000), ("vp", "sde", 10, 10), ("ve", "euler", 7, 7)):
        args = ["sample", "--run", tmp_path / run, "--seeds", "0-3", "--sampler", sampler, "--json",
                "--out", tmp_path / f"s-{run}-{sampler}"]
        if steps:
            args += ["--steps", str(steps)]
        p = run_cli(*args)
        assert p.returncode == 0, (run, sampler, p.stderr)
        res = json.loads(p.stdout)
        assert res["generated"] == 4 and (res["nfe"] == nfe if nfe else res["nfe"] > 5), (run, sampler, res)
    for run in ("pfgm", "vp", "ve"):     # the step-noise test has a meaning only for PFGM++/EDM's sigma
        p = run_cli("sample", "--run", tmp_path / run, "--seeds", "0", "--steps", "4", "--alpha", "0.1",
                    "--out", tmp_path / "x")
        assert p.returncode == 2 and "alpha" in p.stderr and "not defined" in p.stderr, (run, p.stderr)
        assert not (tmp_path / "x").exists()
    p = run_cli("train", *common, "--family", "pfgm", "--D", "128", "--out", tmp_path / "bad")
    assert p.returncode == 2 and "no D" in p.stderr
    p = run_cli("train", "--preset", "digits-pfgm", "--D", "128", "--out", tmp_path / "bad")   # the preset's family
    assert p.returncode == 2 and "no D" in p.stderr and not (tmp_path / "bad").exists()


def test_demos_show_the_flows_and_the_collapse_without_z(tmp_path):
    """The talk's pictures from exact fields: PFGM and PFGM++ carry the prior onto the data; the 2-D
    field of the data itself (no extra dimension) leaves most of the data uncovered."""
    from pfgmbench.demos import make_demos

    s = make_demos(tmp_path, progress=lambda *_: None)
    for name in ("heart", "text"):
        assert s[f"pfgm_{name}"]["samples_on_data"] > 0.95
        assert s[f"pfgmpp_{name}_Dinf"]["samples_on_data"] > 0.95
        assert s[f"no_z_{name}"]["data_covered"] < 0.5 * s[f"pfgm_{name}"]["data_covered"]
        for png in ("pfgm_trajectories", "pfgmpp_trajectories", "no_z_collapse"):
            assert (tmp_path / f"{png}_{name}.png").stat().st_size > 10_000


def test_ddpm_levels_and_step_noise():
    """DDPM's linear betas (1e-4 .. 0.02, 1000 steps): sigma_j = sqrt((1 - abar_j) / abar_j); its step
    noise (variance beta_t in the scaled chain) is sqrt(beta_t / abar_(t-1)) in noise-level units."""
    from pfgmbench.physics.sde import ddpm_noise, ddpm_sigmas

    betas = np.linspace(1e-4, 0.02, 1000)
    abar = np.cumprod(1 - betas)
    np.testing.assert_allclose(ddpm_sigmas().numpy(), np.sqrt((1 - abar) / abar), rtol=1e-10)
    for t in (2, 10, 500, 999):      # 1-based step t: from sigma_t to sigma_(t-1)
        s, s2 = np.sqrt((1 - abar[t - 1]) / abar[t - 1]), np.sqrt((1 - abar[t - 2]) / abar[t - 2])
        got = float(ddpm_noise(torch.tensor(s), torch.tensor(s2)))
        assert got == pytest.approx(np.sqrt(betas[t - 1] / abar[t - 2]), rel=1e-9)
    grid = VP(_cfg("vp"), (4,)).grid(0, sampler="ddpm")
    assert len(grid) == 1001 and grid[-1] == 0 and grid[0] == pytest.approx(np.sqrt((1 - abar[-1]) / abar[-1]))
