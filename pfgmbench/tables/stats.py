"""Intervals, resolution and verdicts for the proxy tables (issue: proxies that can tell the papers'
claims apart).

A cell (one model row) has per-seed values v_s (the best checkpoint's metric) with sampling errors
se_s (bootstrap over the scored samples, stored with each results row). The cell mean's
distribution is bootstrapped over both: seeds are resampled with replacement, and each drawn seed
contributes v_s + se_s * n, n ~ N(0, 1). A difference between two cells is resolved when its 95%
interval excludes zero; the table's resolution is the typical half-width of such an interval.
"""
import numpy as np

B = 4000          # bootstrap draws per cell
LEVEL = 0.95
SEED = 1128


def cell_draws(values, ses, rng):
    """B bootstrap draws of a cell's mean over seeds (seeds resampled, each perturbed by its own se)."""
    v = np.asarray(values, dtype=np.float64)
    s = np.asarray(ses, dtype=np.float64)
    if len(v) < 2 and not np.isfinite(s).all():    # one seed, no sampling error: nothing to judge by
        return np.full(B, np.nan)
    s = np.nan_to_num(s, nan=0.0)
    idx = rng.integers(0, len(v), (B, len(v)))
    return (v[idx] + s[idx] * rng.standard_normal((B, len(v)))).mean(1)


def interval(draws, level=LEVEL):
    if np.isnan(draws).any():
        return -np.inf, np.inf
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def summarise_cells(cells):
    """cells: {key: (values, ses)} -> {key: {'mean', 'lo', 'hi', 'seeds', 'draws'}} with one shared RNG."""
    rng = np.random.default_rng(SEED)
    out = {}
    for k in sorted(cells, key=str):
        values, ses = cells[k]
        d = cell_draws(values, ses, rng)
        lo, hi = interval(d)
        out[k] = {"mean": float(np.mean(values)), "lo": lo, "hi": hi, "seeds": len(values), "draws": d}
    return out


def difference(a, b):
    """Mean and 95% interval of b - a (independent cells)."""
    d = b["draws"] - a["draws"]
    lo, hi = interval(d)
    return float(b["mean"] - a["mean"]), lo, hi


def tie_verdict(lo, hi):
    """For a claim of comparable quality: consistent when the interval contains zero."""
    return "consistent (no resolved difference)" if lo <= 0 <= hi else "does not hold"


def verdict(lo, hi, expected_positive=True):
    """'holds' when the interval of (worse - better as the paper orders them) is above zero,
    'does not hold' when below, 'not resolved' when it contains zero."""
    if lo > 0:
        return "holds" if expected_positive else "does not hold"
    if hi < 0:
        return "does not hold" if expected_positive else "holds"
    return "not resolved"


def resolution(summary):
    """The smallest difference this table can resolve: the median half-width of the 95% interval of
    a difference between two of its cells (independent cells: the half-widths add in quadrature)."""
    halves = [(s["hi"] - s["lo"]) / 2 for s in summary.values() if np.isfinite(s["hi"] - s["lo"])]
    if not halves:
        return float("nan")
    return float(np.sqrt(2) * np.median(halves))
