"""Intervals and verdicts of the proxy tables: coverage on synthetic cells with known means, and
the verdict logic."""
import numpy as np
import pandas as pd

from pfgmbench.tables.stats import (
    difference,
    resolution,
    summarise_cells,
    tie_verdict,
    verdict,
)


def test_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(200):
        seeds = 5 + rng.normal(0, 1.0, 4)                 # seed-to-seed spread 1.0
        values = seeds + rng.normal(0, 0.3, 4)           # plus sampling error 0.3, reported as se
        s = summarise_cells({"a": (values, np.full(4, 0.3))})["a"]
        hits += s["lo"] <= 5 <= s["hi"]
    assert 0.80 <= hits / 200 <= 1.0     # the bootstrap over 4 seeds is a little narrow; not far off


def test_verdicts_follow_the_interval():
    assert verdict(0.5, 2.0) == "holds" and verdict(-2.0, -0.5) == "does not hold"
    assert verdict(-0.5, 0.5) == "not resolved"
    assert verdict(0.5, 2.0, expected_positive=False) == "does not hold"
    assert tie_verdict(-0.5, 0.5).startswith("consistent") and tie_verdict(0.5, 1.0) == "does not hold"


def test_differences_resolve_with_seeds_and_not_with_one():
    a = (np.array([10.0, 10.2, 9.9]), np.full(3, 0.1))
    b = (np.array([12.0, 12.1, 11.8]), np.full(3, 0.1))
    st = summarise_cells({"a": a, "b": b})
    diff, lo, hi = difference(st["a"], st["b"])
    assert 1.5 < diff < 2.5 and lo > 0
    assert 0 < resolution(st) < 1
    one = summarise_cells({"a": (np.array([10.0]), np.array([np.nan])), "b": (np.array([12.0]), np.array([np.nan]))})
    _, lo, hi = difference(one["a"], one["b"])
    assert verdict(lo, hi) == "not resolved"           # one seed and no sampling error: nothing to judge by


def results_frame(base_by_D, table="table1", mapped=None, seeds=3):
    """Results rows of a PFGM++ table: per paper D, `seeds` seeds x 3 checkpoints whose best is
    base + 0.2 seed; `mapped` maps the paper's D to the proxy's (default: kept)."""
    rows = []
    for D, base in base_by_D.items():
        ours = (mapped or {}).get(D, D)
        for seed in range(seeds):
            for k, kimg in enumerate((20, 25, 30)):
                rows.append({"table": table, "preset": "digits-table", "scale": "proxy", "family": "pfgmpp",
                             "method": "EDM" if D == float("inf") else "PFGM++", "knobs": f"D={ours}",
                             "paper_knobs": f"D={D}", "variant": "", "cond": 0, "N": 64, "seed": seed,
                             "kimg": kimg, "checkpoint": f"{table}{seed}{k}{D}", "metric": "fd-digits",
                             "value": base + 0.2 * seed + k, "value_se": 0.2, "n": 1000, "floor": 5.9,
                             "floor_n": 297, "sampler": "heun", "steps": 18, "nfe": 35, "far_out": 0.0,
                             "compute": "fp32", "commit": "x", "data": "digits"})
    return pd.DataFrame(rows)


def test_claims_in_a_rendered_table():
    """A table whose finite-D row is clearly better than EDM says the paper's claim holds."""
    from pfgmbench.tables.render import render_best_table
    from pfgmbench.tables.specs import SPECS

    md = render_best_table(results_frame({2048.0: 10.0, float("inf"): 14.0}), SPECS["table1"])
    assert "PFGM++ D=2048 beats EDM D=∞ (paper 1.91 vs 1.98)" in md and "**holds**" in md
    assert "**Resolution.**" in md and "95% interval" in md


def test_both_mappings_side_by_side_name_the_better_run_per_paper_row():
    """D = 64 much better with D kept than with D/N kept (a heavy-tailed 1.33), EDM the same in both:
    the side-by-side table says 'right better' for D = 64 and 'not resolved' for EDM, and labels the
    heavy-tailed kernel."""
    from pfgmbench.tables.render import render_side_by_side
    from pfgmbench.tables.specs import SPECS

    inf = float("inf")
    left = results_frame({64.0: 60.0, inf: 30.0}, "table1", mapped={64.0: 1.3333}, seeds=2)
    right = results_frame({64.0: 28.0, inf: 30.0}, "table1-dkept")
    md = render_side_by_side((SPECS["table1"], left), (SPECS["table1-dkept"], right))
    lines = {ln.split(" | ")[0]: ln for ln in md.splitlines() if ln.startswith("| ")}
    assert "| 64 | 1.33 | 60.10 ± 0.10 |" in lines["| 64"] and "heavy-tailed" in lines["| 64"]
    assert lines["| 64"].endswith("| right better |") and "| +31.90 |" in lines["| 64"]
    assert lines["| ∞"].endswith("| not resolved |")
    assert "seeds 0, 1, 30 kimg" in md and "seeds 0, 1, 2, 30 kimg" in md


def test_a_paper_row_with_no_counterpart_at_the_proxys_N_says_why():
    """Table 2 keeps D/N of FFHQ's N = 12288: at N = 64 the paper's D = 128 would be 0.67 < 1."""
    from pfgmbench.tables.render import render_best_table
    from pfgmbench.tables.specs import SPECS

    inf = float("inf")
    md = render_best_table(results_frame({2048.0: 10.0, inf: 12.0}, "table2", mapped={2048.0: 10.6667}),
                           SPECS["table2"])
    row = next(ln for ln in md.splitlines() if ln.startswith("| PFGM++ (not run) | 128 |"))
    assert "no counterpart at N = 64: paper D=128 maps to D=0.667 < 1" in row
