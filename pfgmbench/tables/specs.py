"""Declarative table specs: which models (rows), on which preset, scored how, beside which paper
numbers. `pfgmbench reproduce WHAT --scale proxy|paper` runs a spec; the renderer reads it.

A row is a model family with the paper's knob values (mapped to the proxy's data dimension by
the family on proxy presets), class conditioning and sampler. Robustness tables add a stress
knob (bits, alpha, steps) whose values become the columns.
"""
from dataclasses import dataclass, field
from typing import Optional

from pfgmbench.errors import UserError
from pfgmbench.tables import paper

INF = float("inf")


@dataclass(frozen=True)
class Row:
    family: str
    knobs: tuple = ()              # the paper's knob values, as ((name, value), ...)
    cond: bool = False
    sampler: Optional[str] = None
    steps: Optional[int] = None    # sampler steps for this row (default: the table's / the preset's)

    @property
    def knob_dict(self):
        return dict(self.knobs)

    @property
    def paper_key(self):
        return paper.key(self.family, self.knob_dict, self.cond, self.sampler)


def D_rows(values, cond=False):
    """PFGM++ rows at the paper's D values (D = inf is the EDM row)."""
    return [Row("pfgmpp", (("D", float(v)),), cond) for v in values]


@dataclass
class Scale:
    """How a table runs at one scale: preset(s), seeds, metric, samples, checkpoints scored."""
    preset: str
    metric: str
    num: int
    seeds: str
    cond_preset: Optional[str] = None
    score_from_kimg: Optional[float] = None    # None: the last `score_last` snapshots
    score_last: int = 3
    steps: Optional[int] = None
    paper_N: Optional[int] = None              # the paper data set's N whose knobs the proxy mirrors
    sets: tuple = ()
    family_presets: dict = field(default_factory=dict)   # a preset per family where it differs
    kimg: Optional[float] = None               # training duration (default: the preset's)
    absolute: bool = False                     # use the paper's knob values as they are (no mapping to N)
    quant_rule: str = "paper"                  # robustness tables: which weights quantisation touches
    source_table: Optional[str] = None         # robustness tables: whose models to stress at this scale


@dataclass
class TableSpec:
    name: str
    title: str
    paper: dict
    rows: list
    scales: dict = field(default_factory=dict)
    stress: Optional[str] = None               # robustness tables: 'quant' | 'alpha' | 'steps'
    stress_values: tuple = ()
    source_table: Optional[str] = None         # robustness tables stress this table's models
    optional: list = field(default_factory=list)   # rows shown as ours when a results file has them, else cited
    order_column: int = 0                      # the paper column our metric is ranked against
    reference: Optional[Row] = None            # the row the paper's claims compare against (verdicts)
    beside: Optional[str] = None               # a table of the same rows, mapped otherwise, shown side by side

    def scale(self, scale):
        if scale not in self.scales:
            raise UserError(f"{self.name} has no '{scale}' scale; choose {' or '.join(self.scales)}")
        return self.scales[scale]


TABLE1_ROWS = D_rows([64, 128, 2048, 3072000, INF]) + D_rows([2048, INF], cond=True)
BASELINE_ROWS = [Row("vp", sampler="ddpm"), Row("vp", sampler="ddim", steps=50), Row("ve", sampler="rk45"),
                 Row("vp", sampler="rk45"), Row("pfgm", sampler="rk45")]
PFGM_ROWS = [Row("pfgm", sampler="rk45"), Row("vp", sampler="sde", steps=1000), Row("vp", sampler="rk45"),
             Row("vp", sampler="ddim", steps=50), Row("vp", sampler="ddpm")] + D_rows([128, INF])
TABLE2_ROWS = D_rows([128, 2048, 3072000, INF])
ROBUST_ROWS = D_rows([64, 128, 2048, INF])

EDM = Row("pfgmpp", (("D", INF),))
PFGM = Row("pfgm", sampler="rk45")
DIGITS, REGIME = "digits-table", "digits32-table"


def _robust(name, title, paper_numbers, stress, values, source, proxy, rule="paper"):
    # at paper scale every stress table takes Table 1's CIFAR-10 models, as the paper does
    return TableSpec(name, title, paper_numbers, ROBUST_ROWS,
                     {"proxy": proxy, "paper": Scale("cifar10-ncsnpp", "fid", 50000, "0", quant_rule="paper",
                                                     source_table="table1")},
                     stress=stress, stress_values=values, source_table=source, reference=EDM)


ALPHAS = tuple(round(0.05 * i, 2) for i in range(10))
BITS = (9, 8, 7, 6, 5, 4, 3, 2)

SPECS = {
    "table1": TableSpec(
        "table1", "PFGM++ Table 1", paper.TABLE1, TABLE1_ROWS,
        {"proxy": Scale(DIGITS, "fd-digits", 1000, "0,1", cond_preset=DIGITS),
         "paper": Scale("cifar10-ncsnpp", "fid", 50000, "0", cond_preset="cifar10-ncsnpp-cond",
                        score_from_kimg=100000)},
        optional=BASELINE_ROWS, reference=EDM),
    # the long reference run: 3 seeds, 90 kimg (near-converged on digits; REFERENCE 8)
    "table1-long": TableSpec(
        "table1-long", "PFGM++ Table 1 (long proxy run: 90 kimg, 3 seeds, unconditional)", paper.TABLE1,
        D_rows([64, 128, 2048, 3072000, INF]),
        {"proxy": Scale(DIGITS, "fd-digits", 1000, "0,1,2", kimg=90)}, optional=BASELINE_ROWS, reference=EDM),
    # digits with the paper's D values kept as they are (thin tails, but D/N far above the paper's)
    "table1-dkept": TableSpec(
        "table1-dkept", "PFGM++ Table 1 on digits with D kept (not D/N)", paper.TABLE1,
        D_rows([64, 128, 2048, 3072000, INF]),
        {"proxy": Scale(DIGITS, "fd-digits", 1000, "0,1,2", absolute=True)}, reference=EDM, beside="table1"),
    # the regime proxy: digits at 32x32 (N = 1024) keep both the paper's D/N and thin tails (D = 64 -> 21.3);
    # 200 kimg per model (7x a digits model), so the last snapshot alone is scored, on 500 samples
    "table1-regime": TableSpec(
        "table1-regime", "PFGM++ Table 1 in the paper's regime: digits at 32x32 (N = 1024)", paper.TABLE1,
        D_rows([64, 128, 2048, 3072000, INF]),
        {"proxy": Scale(REGIME, "fd-digits", 500, "0,1,2", score_last=1)}, reference=EDM),
    "pfgm": TableSpec(
        "pfgm", "PFGM's CIFAR-10 table: PFGM beside the score-SDE baselines, PFGM++ and EDM", paper.PFGM_TABLE,
        PFGM_ROWS,
        {"proxy": Scale(DIGITS, "fd-digits", 1000, "0,1", family_presets={"pfgm": "digits-pfgm"}),
         "paper": Scale("cifar10-ncsnpp", "fid", 50000, "0", score_from_kimg=100000,
                        family_presets={"pfgm": "cifar10-pfgm", "vp": "cifar10-vp"})},
        order_column=1, reference=PFGM),
    "genphys-digits": TableSpec(
        "genphys-digits", "Yukawa (screened Poisson) models beside PFGM and PFGM++ on digits", paper.GENPHYS,
        [PFGM] + [Row("yukawa", (("m", m),), sampler="rk45") for m in (0.1, 0.3, 1.0)]
        + [Row("pfgmpp", (("D", 128.0),), steps=18)],
        {"proxy": Scale("digits-pfgm", "fd-digits", 1000, "0,1")}, reference=PFGM),
    "genphys-toy": TableSpec(
        "genphys-toy", "Yukawa (screened Poisson) models beside PFGM and EDM on a 2-D toy (heart)", paper.GENPHYS,
        [PFGM] + [Row("yukawa", (("m", m),), sampler="rk45") for m in (0.5, 1.0, 2.0)]
        + [Row("pfgmpp", (("D", INF),), steps=18)],
        {"proxy": Scale("toy-heart", "swd", 2000, "0,1,2")}, reference=PFGM),
    "table2": TableSpec(
        "table2", "PFGM++ Table 2", paper.TABLE2, TABLE2_ROWS,
        {"proxy": Scale(DIGITS, "fd-digits", 1000, "0,1,2", steps=40, paper_N=12288),
         "paper": Scale("ffhq64-ddpmpp", "fid", 50000, "0", score_from_kimg=150000)}, reference=EDM),
    # robustness: the proxy stresses the long run's models (3 seeds); the paper rule's proxy analogue keeps
    # only norms, mappings and the output layers in float32 ('output'), as the 8x8 net has little else
    "table3": _robust("table3", "PFGM++ Table 3: post-training weight quantisation", paper.TABLE3, "quant", BITS,
                      "table1-long", Scale(DIGITS, "fd-digits", 500, "0,1,2", quant_rule="output")),
    "table3-all": _robust("table3-all", "PFGM++ Table 3 with every weight quantised (rule all)", paper.TABLE3, "quant",
                          BITS, "table1-long", Scale(DIGITS, "fd-digits", 500, "0,1,2", quant_rule="all")),
    "alpha": _robust("alpha", "PFGM++ robustness to sampler noise alpha (x <- x + alpha t_i eps before each step)",
                     paper.ALPHA, "alpha", ALPHAS, "table1-long", Scale(DIGITS, "fd-digits", 500, "0,1,2")),
    "alpha-regime": _robust("alpha-regime", "PFGM++ robustness to sampler noise alpha in the paper's regime "
                            "(digits at 32x32, N = 1024)", paper.ALPHA, "alpha", (0.0, 0.15, 0.3, 0.45),
                            "table1-regime", Scale(REGIME, "fd-digits", 500, "0,1,2")),
    "steps": _robust("steps", "PFGM++ sampler steps (NFE 19-47)", paper.STEPS, "steps", (10, 12, 14, 16, 18, 20, 22, 24),
                     "table1-long", Scale(DIGITS, "fd-digits", 500, "0,1,2")),
}

# What each stress knob is called in results rows and how to read its values.
STRESS = {
    "quant": {"column": "quant_bits", "label": "weight bits", "harsh": min, "mild": max},
    "alpha": {"column": "alpha", "label": "alpha (step noise x += alpha t_i eps)", "harsh": max, "mild": min},
    "steps": {"column": "steps", "label": "sampler steps T", "harsh": min, "mild": max},
}


# other names users know a table by (the PFGM paper's table is "the PFGM table" in its issue and talk)
ALIASES = {"pfgm-table": "pfgm"}


def canonical(name):
    return ALIASES.get(name, name)


# `reproduce genphys` runs GenPhys's s-generative table and then its two Yukawa specs
COMPOSITES = ("genphys",)


def reproducible():
    """Every name `pfgmbench reproduce` accepts: the specs, their aliases and the composite runs."""
    names = list(SPECS)
    for alias, target in ALIASES.items():
        names.insert(names.index(target) + 1, alias)
    return names + list(COMPOSITES)


def spec(name):
    name = canonical(name)
    if name not in SPECS:
        raise UserError(f"unknown table '{name}'; choose one of {', '.join(SPECS)}")
    return SPECS[name]
