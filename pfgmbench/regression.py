"""`pfgmbench check-regression`: a small-subset sweep compared with a committed baseline.

Cells: a 2-D toy (exact metrics) and the tiny digits model, each at a finite D and at D = inf,
over two training seeds, trained from scratch in a temporary folder (a cache keyed by config
would hide a broken kernel). A cell fails when the mean over seeds is worse than the
baseline's mean by more than max(K x the baseline's seed-to-seed std, REL x its mean).
"""
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pfgmbench.atomic import write_text
from pfgmbench.errors import UserError
from pfgmbench.progress import log as default_log
from pfgmbench.provenance import git_commit, now
from pfgmbench.tables.results import parse_knobs
from pfgmbench.tables.specs import D_rows
from pfgmbench.tables.sweep import SweepSpec, run_sweep

K_STD, REL = 3.0, 0.10
SEEDS = [0, 1]
# (group, preset, D values used as given, metric, samples, kimg)
CELLS = [
    ("toy", "toy-moons", [8.0, float("inf")], "swd", 1000, 6),
    ("digits", "digits-tiny", [2.6667, float("inf")], "fd-digits", 500, 3),
]


class RegressionFailed(UserError):
    pass


def run_cells(log=default_log):
    rows = []
    with tempfile.TemporaryDirectory(prefix="pfgmbench-ci-") as tmp:
        for group, preset, Ds, metric, num, kimg in CELLS:
            spec = SweepSpec(preset=preset, rows=D_rows(Ds), seeds=SEEDS, metric=metric, num=num, kimg=kimg,
                             score_from_kimg=kimg - 1e-6, absolute=True, table=f"ci-{group}",
                             runs_dir=str(Path(tmp) / "runs"), device="cpu")
            csv = Path(tmp) / f"{group}.csv"
            run_sweep(spec, csv, progress=False, log=log)
            df = pd.read_csv(csv)
            for _, r in df.iterrows():
                rows.append({"group": group, "preset": preset, "D": parse_knobs(r["knobs"])["D"], "metric": metric,
                             "seed": int(r["seed"]),
                             "value": float(r["value"]), "n": int(r["n"]), "commit": git_commit(), "timestamp": now()})
    return pd.DataFrame(rows)


def compare(current, baseline):
    """Report lines and whether every cell is within tolerance."""
    lines, ok = [], True
    base = baseline.groupby(["group", "D", "metric"])["value"].agg(["mean", "std", "count"]).reset_index()
    cur = current.groupby(["group", "D", "metric"])["value"].agg(["mean", "std"]).reset_index()
    for _, b in base.iterrows():
        c = cur[(cur["group"] == b["group"]) & np.isclose(cur["D"], b["D"])
                & (cur["metric"] == b["metric"])]
        name = f"{b['group']} D={b['D']:g} {b['metric']}"
        if c.empty:
            lines.append(f"MISSING {name}: not in the current run")
            ok = False
            continue
        std = 0.0 if np.isnan(b["std"]) else b["std"]
        tol = max(K_STD * std, REL * abs(b["mean"]))
        now_mean = float(c["mean"].iloc[0])
        worse = now_mean - b["mean"]
        status = "ok  " if worse <= tol else "FAIL"
        ok &= worse <= tol
        lines.append(f"{status} {name}: {now_mean:.4f} vs baseline {b['mean']:.4f} ± {std:.4f} "
                     f"(worse by {worse:+.4f}, tolerance {tol:.4f})")
    return ok, lines


def check(baseline_path, update=False, log=default_log):
    baseline_path = Path(baseline_path)
    if not update and not baseline_path.is_file():
        raise UserError(f"baseline not found: {baseline_path}; create it with --update")
    current = run_cells(log)
    if update:
        write_text(baseline_path, current.to_csv(index=False))
        return True, [f"baseline written: {baseline_path} ({len(current)} rows)"]
    ok, lines = compare(current, pd.read_csv(baseline_path))
    return ok, lines
