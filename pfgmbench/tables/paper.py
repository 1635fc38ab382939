"""The papers' numbers, in one place, labelled as the papers' (REFERENCE 2, 3 and 4).

Keyed by the model that produced them: family, the paper's knob values, class conditioning and
sampler. Shown beside ours in every table; never written into results as ours.
"""
import math

INF = math.inf


def key(family, knobs=None, cond=False, sampler=None):
    """The identity of a table row: (family, sorted knobs, cond, sampler); the family's default
    sampler is written None, so a row that names it and one that leaves it out are the same row."""
    from pfgmbench.physics import family_class

    if sampler is not None and sampler == family_class(family).default_sampler:
        sampler = None
    return (family, tuple(sorted((knobs or {}).items())), bool(cond), sampler)


# The baselines PFGM++ Table 1 cites, as the models that make them here (family, sampler).
DDPM, DDIM = key("vp", sampler="ddpm"), key("vp", sampler="ddim")
VP_ODE, VP_SDE, VE_ODE = key("vp", sampler="rk45"), key("vp", sampler="sde"), key("ve", sampler="rk45")
PFGM = key("pfgm")
NAMES = {DDPM: "DDPM", DDIM: "DDIM", VP_ODE: "VP-ODE", VP_SDE: "VP-SDE", VE_ODE: "VE-ODE", PFGM: "PFGM"}

# PFGM++ Table 1, CIFAR-10: (Min FID, Top-3 avg FID, NFE).
TABLE1 = {
    "source": "PFGM++ (Xu et al., ICML 2023), Table 1, CIFAR-10 32x32, FID on 50k samples",
    "resolution": "CIFAR-10 32x32", "N": 3072, "columns": ("Min FID ↓", "Top-3 avg FID ↓", "NFE"),
    "numbers": {
        key("pfgmpp", {"D": 64}): (1.96, 1.98, 35), key("pfgmpp", {"D": 128}): (1.92, 1.94, 35),
        key("pfgmpp", {"D": 2048}): (1.91, 1.93, 35), key("pfgmpp", {"D": 3072000}): (1.99, 2.02, 35),
        key("pfgmpp", {"D": INF}): (1.98, 2.00, 35),
        key("pfgmpp", {"D": 2048}, cond=True): (1.74, None, 35), key("pfgmpp", {"D": INF}, cond=True): (1.79, None, 35),
        # cited by the paper from earlier work (shown as ours when a sweep has the model)
        DDPM: (3.17, None, 1000), DDIM: (4.67, None, 50), VE_ODE: (5.29, None, 194), VP_ODE: (2.86, None, 134),
        PFGM: (2.48, None, 104),
    },
    "cited": [],    # models with no counterpart here: (name, values per column)
}

# The PFGM paper's CIFAR-10 table (Inception Score, FID, NFE; the talk's slide), with the PFGM++
# Table 1 rows for DDIM, DDPM, PFGM++ D=128 and EDM beside it (FID only there).
PFGM_TABLE = {
    "source": "PFGM (Xu et al., NeurIPS 2022), CIFAR-10 table (IS / FID / NFE); DDIM, DDPM, PFGM++ and EDM "
              "rows from PFGM++ Table 1 (FID / NFE only)",
    "resolution": "CIFAR-10 32x32", "N": 3072, "columns": ("IS ↑", "FID ↓", "NFE"), "higher_first": True,
    "numbers": {
        PFGM: (9.68, 2.35, 110), VP_SDE: (9.68, 2.41, 1000), VP_ODE: (9.47, 2.86, 134),
        DDIM: (None, 4.67, 50), DDPM: (None, 3.17, 1000),
        key("pfgmpp", {"D": 128}): (None, 1.92, 35), key("pfgmpp", {"D": INF}): (None, 1.98, 35),
    },
    "cited": [("StyleGAN2-ADA", (9.83, 2.92, 1)), ("Glow", (3.92, 48.9, 1))],
}

# PFGM++ Table 2, FFHQ 64x64: (Min FID, Top-3 avg FID, NFE).
TABLE2 = {
    "source": "PFGM++ (Xu et al., ICML 2023), Table 2, FFHQ 64x64, FID on 50k samples",
    "resolution": "FFHQ 64x64", "N": 12288, "columns": ("Min FID ↓", "Top-3 avg FID ↓", "NFE"),
    "numbers": {
        key("pfgmpp", {"D": 128}): (2.43, 2.48, 79), key("pfgmpp", {"D": 2048}): (2.46, 2.47, 79),
        key("pfgmpp", {"D": 3072000}): (2.49, 2.52, 79), key("pfgmpp", {"D": INF}): (2.53, 2.54, 79),
    },
    "cited": [],
}

# PFGM++ Table 3, CIFAR-10 FID after post-training weight quantisation, by bits.
TABLE3 = {
    "source": "PFGM++ (Xu et al., ICML 2023), Table 3, CIFAR-10 FID after post-training weight quantisation",
    "resolution": "CIFAR-10 32x32", "N": 3072, "knob": "quant_bits", "values": (9, 8, 7, 6, 5),
    "numbers": {
        key("pfgmpp", {"D": 64}): (1.96, 1.96, 2.12, 2.94, 28.50),
        key("pfgmpp", {"D": 128}): (1.93, 1.97, 2.15, 3.68, 34.26),
        key("pfgmpp", {"D": 2048}): (1.91, 1.97, 2.12, 5.67, 47.02),
        key("pfgmpp", {"D": INF}): (1.97, 2.04, 2.16, 5.91, 50.09),
    },
}

# GenPhys proposes the Yukawa model but reports no benchmark numbers for it: measuring them is ours.
GENPHYS = {"source": "GenPhys (Liu et al., 2023) proposes screened-Poisson (Yukawa) models but reports no "
                     "benchmark numbers; every number here is ours", "resolution": "none (no paper numbers)",
           "N": None, "columns": (), "numbers": {}, "cited": []}

# The alpha (step noise) and step-count studies are figures in the paper: no numbers to show.
ALPHA = {"source": "PFGM++ (Xu et al., ICML 2023), Figure (FID vs alpha, CIFAR-10): a figure, no table",
         "resolution": "CIFAR-10 32x32", "N": 3072, "knob": "alpha", "values": (), "numbers": {}}
STEPS = {"source": "PFGM++ (Xu et al., ICML 2023), Figure (FID vs NFE, CIFAR-10): a figure, no table",
         "resolution": "CIFAR-10 32x32", "N": 3072, "knob": "steps", "values": (), "numbers": {}}


def knob_label(value):
    """A knob value as tables print it: 2048, 42.67, '∞'."""
    v = float(value)
    if math.isinf(v):
        return "∞"
    return str(int(v)) if v == int(v) else f"{v:.2f}"
