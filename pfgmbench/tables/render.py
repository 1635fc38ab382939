"""One renderer for every table: results CSV + table spec -> Markdown in the paper's layout (ours
beside the paper's numbers, labelled) and plots. Rows are matched to the spec by model identity
(family, the paper's knobs, class conditioning, sampler); nothing here knows a family by name.
"""
import math

import numpy as np
import pandas as pd

from pfgmbench.atomic import atomic_path
from pfgmbench.errors import UserError
from pfgmbench.metrics import HIGHER_IS_BETTER
from pfgmbench.physics import family_class
from pfgmbench.tables import paper
from pfgmbench.tables.results import parse_knobs
from pfgmbench.tables.specs import STRESS

IDENTITY = ["family", "paper_knobs", "cond", "sampler", "variant"]


def _identity(df):
    df = df.copy()
    df["sampler"] = df["sampler"].fillna("") if "sampler" in df else ""
    df["variant"] = df["variant"].fillna("") if "variant" in df else ""
    return df


def row_key(r):
    """The paper-number key of a results row (or summary row)."""
    return paper.key(r["family"], parse_knobs(r["paper_knobs"]), bool(r["cond"]), r["sampler"] or None)


def knob_names(df):
    names = []
    for text in df["paper_knobs"].unique():
        for k in parse_knobs(text):
            if k not in names:
                names.append(k)
    return names


def per_seed(df):
    """Per model and seed: the best checkpoint (Min) and the mean of the three best (Top-3)."""
    higher = df["metric"].iloc[0] in HIGHER_IS_BETTER
    rows = []
    for ident, g in _identity(df).groupby(IDENTITY + ["seed"], dropna=False):
        order = np.argsort(-g["value"].to_numpy() if higher else g["value"].to_numpy(), kind="stable")
        v = g["value"].to_numpy()[order]
        se = pd.to_numeric(g["value_se"], errors="coerce").to_numpy()[order] if "value_se" in g else np.full(len(v), np.nan)
        last = g.iloc[0]
        rows.append(dict(zip(IDENTITY + ["seed"], ident), method=last["method"], knobs=last["knobs"],
                         best=v[0], best_se=se[0], top3=v[:3].mean() if len(v) >= 3 else np.nan, n_ckpt=len(v), nfe=float(g["nfe"].iloc[0]), n=int(g["n"].iloc[0]),
                         floor=g["floor"].iloc[0] if "floor" in g else float("nan"),
                         floor_n=g["floor_n"].iloc[0] if "floor_n" in g else float("nan"),
                         far_out=pd.to_numeric(g["far_out"], errors="coerce").mean() if "far_out" in g else float("nan")))
    return pd.DataFrame(rows)


def across_seeds(summary):
    out = []
    for ident, g in summary.groupby(IDENTITY, dropna=False):
        first = g.iloc[0]
        out.append(dict(zip(IDENTITY, ident), method=first["method"], knobs=first["knobs"], seeds=len(g),
                        best_mean=g["best"].mean(), best_std=g["best"].std(ddof=0),
                        top3_mean=g["top3"].mean(), top3_std=g["top3"].std(ddof=0), nfe=first["nfe"], n=first["n"],
                        n_ckpt=g["n_ckpt"].min(), floor=first["floor"], floor_n=first["floor_n"],
                        far_out=g["far_out"].mean()))
    return pd.DataFrame(out)


def _pm(mean, std, seeds):
    if pd.isna(mean):       # e.g. Top-3 of a model scored at fewer than three checkpoints
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if seeds > 1 else f"{mean:.2f}"


def _ci(stat):
    return f"[{stat['lo']:.2f}, {stat['hi']:.2f}]" if stat else "–"


def cell_stats(summary):
    """Bootstrap statistics of each model's Min (over seeds and samples), keyed by identity."""
    from pfgmbench.tables.stats import summarise_cells

    cells = {}
    for ident, g in summary.groupby(IDENTITY, dropna=False):
        cells[ident] = (g["best"].to_numpy(), g["best_se"].to_numpy())
    return summarise_cells(cells)


def tail_note(r):
    """The family's remark on a row's knobs (e.g. a heavy-tailed PFGM++ kernel), from the results row."""
    return family_class(r["family"]).note(parse_knobs(r["knobs"]))


def _num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return str(v) if isinstance(v, int) else f"{v:.2f}"


def _pct(v):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _knob_cells(knobs_text, names):
    k = parse_knobs(knobs_text)
    return [paper.knob_label(k[n]) if n in k else "–" for n in names]


def _sort_key(row, spec):
    keys = [r.paper_key for r in spec.rows]
    k = row_key(row)
    return keys.index(k) if k in keys else len(keys)


def header_lines(df, spec, what):
    scale = df["scale"].iloc[0]
    seeds = ", ".join(str(int(s)) for s in sorted(df["seed"].unique()))
    commits = ", ".join(sorted(set(df["commit"].astype(str))))
    lines = [f"## {spec.title} — {scale} scale", "",
             f"Ours: preset `{df['preset'].iloc[0]}`, metric `{df['metric'].iloc[0]}` on n = {int(df['n'].iloc[0])} "
             f"samples {what}, mean ± std over training seeds ({seeds}); compute "
             f"{', '.join(sorted(set(df['compute'].astype(str))))}; commit {commits}."]
    if spec.paper["N"] is None:
        lines.append(f"Resolution: N = {int(df['N'].iloc[0])}; the paper has no numbers for these models, so the "
                     "table compares our models with each other only.")
    elif scale == "proxy":
        N = int(df["N"].iloc[0])
        lines.append(f"Resolution: proxy data with N = {N} instead of the paper's {spec.paper['resolution']} "
                     f"(N = {spec.paper['N']}); knobs mapped by the model family to keep the paper's ratio to N "
                     "(both columns shown). The metric is not FID: compare orderings, not values.")
    else:
        lines.append(f"Resolution: {spec.paper['resolution']}, as in the paper.")
    return lines


def render_best_table(df, spec):
    """Table 1 / 2 layout: Min and Top-3 over checkpoints per model, ours beside the paper's, with
    95% intervals (bootstrap over seeds and samples), the table's resolution and claim verdicts."""
    seeds = per_seed(df)
    agg = across_seeds(seeds)
    stats = cell_stats(seeds)
    metric = df["metric"].iloc[0]
    arrow = "↑" if metric in HIGHER_IS_BETTER else "↓"
    names = knob_names(df) or [k for r in spec.rows for k in r.knob_dict][:1]
    N = int(df["N"].iloc[0])
    lines = header_lines(df, spec, f"per checkpoint, {int(agg['n_ckpt'].min())} checkpoints per model")
    if agg["floor"].notna().any():
        lines.append(f"Data-vs-data floor (held-out test vs train, n = {int(agg['floor_n'].iloc[0])}): "
                     f"{agg['floor'].iloc[0]:.2f}.")
    lines.append(f"Paper columns: {spec.paper['source']} — the paper's numbers, not ours." if spec.paper["numbers"]
                 else f"Paper: {spec.paper['source']}.")
    pcols = spec.paper["columns"]
    head = (["Method"] + [f"{n} (paper)" for n in names] + [f"{n} (ours, N={N})" for n in names]
            + [f"Min {metric} {arrow} (ours)", "95% interval (ours)", f"Top-3 avg {metric} {arrow} (ours)", "NFE (ours)"]
            + [f"{c} (paper)" for c in pcols] + ["samples with max abs > 2 (ours)", "note"])
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    numbers = spec.paper["numbers"]
    for cond in (False, True):
        part = agg[agg["cond"].astype(bool) == cond]
        spec_rows = [r for r in spec.rows if r.cond == cond]
        if part.empty and not spec_rows:
            continue
        if cond:
            lines.append("| *class-conditional* |" + " |" * (len(head) - 1))
        shown = set()
        for _, r in sorted(part.iterrows(), key=lambda kv: _sort_key(kv[1], spec)):
            p = numbers.get(row_key(r), (None,) * len(pcols))
            shown.add(row_key(r))
            ident = tuple(r[c] for c in IDENTITY)
            lines.append("| " + " | ".join([r["method"] + (f" [{r['variant']}]" if r["variant"] else "")]
                                           + _knob_cells(r["paper_knobs"], names) + _knob_cells(r["knobs"], names)
                                           + [_pm(r["best_mean"], r["best_std"], r["seeds"]), _ci(stats.get(ident)),
                                              _pm(r["top3_mean"], r["top3_std"], r["seeds"]), _nfe(r["nfe"])]
                                           + [_num(v) for v in p] + [_pct(r["far_out"]), tail_note(r) or "–"]) + " |")
        for row in spec_rows:
            if row.paper_key not in shown:
                p = numbers.get(row.paper_key, (None,) * len(pcols))
                fam = family_class(row.family)
                name = paper.NAMES.get(row.paper_key) or fam.method_name(row.knob_dict, row.sampler)
                lines.append("| " + " | ".join([f"{name} (not run)"]
                                               + [paper.knob_label(row.knob_dict[n]) if n in row.knob_dict else "–"
                                                  for n in names] + ["not run"] * len(names) + ["–"] * 4
                                               + [_num(v) for v in p] + ["–", _why_not_run(fam, row, N, df, spec)])
                             + " |")
    ours = {row_key(r) for _, r in agg.iterrows()}
    for row in spec.optional:   # baselines the paper cites: ours when the results have them
        if row.paper_key not in ours and row.paper_key in numbers:
            cells = [f"{paper.NAMES.get(row.paper_key, row.family)} (cited)"] + ["–"] * len(names)
            cells += ["not reproduced"] * len(names) + ["–"] * 4 + [_num(v) for v in numbers[row.paper_key]]
            lines.append("| " + " | ".join(cells + ["–", "–"]) + " |")
    for name, values in spec.paper.get("cited", []):
        cells = [f"{name} (cited)"] + ["–"] * len(names) + ["not reproduced"] * len(names) + ["–"] * 4
        lines.append("| " + " | ".join(cells + [_num(v) for v in values] + ["–", "–"]) + " |")
    lines += ["", ordering_note(agg, spec, metric in HIGHER_IS_BETTER), "",
              claims_note(agg, stats, spec, metric, metric in HIGHER_IS_BETTER), ""]
    return "\n".join(lines)


def _why_not_run(fam, row, N, df, spec):
    """A proxy row whose paper knobs have no counterpart at this N says so; else it is still to run."""
    if df["scale"].iloc[0] == "proxy" and spec.paper["N"]:
        try:
            fam.proxy_knobs(row.knob_dict, N, spec.paper["N"])
        except UserError as e:
            return f"no counterpart at N = {N}: {str(e).split(';')[0]}"
    return "not in the results yet"


def _nfe(v):
    return str(int(v)) if float(v) == int(v) else f"{float(v):.1f}"


def render_side_by_side(first, second):
    """Two runs of the same paper rows with different knob mappings (e.g. Table 1 with D/N kept and
    with D kept), one line per paper row: each run's knobs, Min with its 95% interval and tail note,
    and the difference of the two Mins with its interval. first / second: (spec, results DataFrame)."""
    from pfgmbench.tables.stats import difference

    runs = []
    for spec, df in (first, second):      # statistics over the whole table, so its intervals are the table's
        seeds = per_seed(df)
        agg = across_seeds(seeds)
        uncond = {r["paper_knobs"]: r for _, r in agg.iterrows() if not bool(r["cond"])}
        runs.append((spec, df[~df["cond"].astype(bool)], uncond, cell_stats(seeds)))
    (s1, d1, a1, st1), (s2, d2, a2, st2) = runs
    metric = d1["metric"].iloc[0]
    higher = metric in HIGHER_IS_BETTER
    names = knob_names(d1)
    N = int(d1["N"].iloc[0])
    spec_order = [r.paper_key for r in s1.rows]

    def run_text(spec, df):
        seeds = ", ".join(str(int(s)) for s in sorted(df["seed"].unique()))
        return f"`{spec.name}` ({spec.title}; seeds {seeds}, {df['kimg'].max():.0f} kimg)"

    lines = [f"### Both mappings side by side (N = {N}, `{metric}`, Min over checkpoints, mean ± std over seeds)", "",
             f"Left: {run_text(s1, d1)}. Right: {run_text(s2, d2)}. Δ = left Min minus right Min "
             f"({'negative' if higher else 'positive'}: the right run is better), with a 95% interval.", "",
             "| " + " | ".join([f"{n} (paper)" for n in names]
                               + [h for side in ("left", "right")
                                  for h in [f"{n} ({side})" for n in names]
                                  + [f"Min ({side})", f"95% interval ({side})", f"note ({side})"]]
                               + ["Δ", "Δ interval", "verdict"]) + " |",
             "|" + "---|" * (3 * len(names) + 9)]
    both = [k for k in a1 if k in a2]
    both.sort(key=lambda k: spec_order.index(row_key(a1[k])) if row_key(a1[k]) in spec_order else len(spec_order))
    for k in both:
        r1, r2 = a1[k], a2[k]
        i1, i2 = tuple(r1[c] for c in IDENTITY), tuple(r2[c] for c in IDENTITY)
        diff, lo, hi = difference(st2[i2], st1[i1])          # left minus right
        right_better, left_better = (hi < 0, lo > 0) if higher else (lo > 0, hi < 0)
        verdict = "right better" if right_better else "left better" if left_better else "not resolved"
        lines.append("| " + " | ".join(
            _knob_cells(k, names) + _knob_cells(r1["knobs"], names)
            + [_pm(r1["best_mean"], r1["best_std"], r1["seeds"]), _ci(st1.get(i1)), tail_note(r1) or "–"]
            + _knob_cells(r2["knobs"], names)
            + [_pm(r2["best_mean"], r2["best_std"], r2["seeds"]), _ci(st2.get(i2)), tail_note(r2) or "–",
               f"{diff:+.2f}", f"[{lo:+.2f}, {hi:+.2f}]", verdict]) + " |")
    return "\n".join(lines + [""])


def claims_note(agg, stats, spec, metric, higher=False):
    """The table's resolution, and a verdict on each of the paper's claims against its reference
    row (e.g. each PFGM++ D against EDM): holds / does not hold / not resolved (95% intervals)."""
    from pfgmbench.tables.stats import difference, resolution, tie_verdict, verdict

    uncond = {tuple(r[c] for c in IDENTITY): r for _, r in agg.iterrows() if not bool(r["cond"])}
    res = resolution({k: stats[k] for k in uncond if k in stats})
    seeds = sorted({int(r["seeds"]) for r in uncond.values()})
    scope = f"With {'/'.join(map(str, seeds))} training seeds and n = {int(agg['n'].iloc[0])} samples per checkpoint"
    if res is None or not math.isfinite(res):   # one seed and a metric without a per-sample error
        lines = [f"**Resolution.** {scope}, no interval can be estimated (one training seed and no sampling "
                 "error for this metric): run more seeds (--seeds 0-2) before reading differences as claims."]
    else:
        lines = [f"**Resolution.** {scope}, differences in Min {metric} below about {res:.2f} are not resolved "
                 "(median half-width of the 95% interval of a difference between two rows)."]
    ref = next((k for k, r in uncond.items() if spec.reference is not None and row_key(r) == spec.reference.paper_key),
               None)
    if ref is None:
        return "\n".join(lines)
    numbers, col = spec.paper["numbers"], spec.order_column
    rref = uncond[ref]
    pref = numbers.get(row_key(rref), (None,) * (col + 1))[col]
    names = knob_names(agg)
    claims = []
    for k, r in uncond.items():
        if k == ref:
            continue
        diff, lo, hi = difference(stats[k], stats[ref])      # reference minus this row
        if higher:
            diff, lo, hi = -diff, -hi, -lo
        p = numbers.get(row_key(r), (None,) * (col + 1))[col]
        if p is not None and pref is not None and abs(p - pref) < spec.paper.get("tie", 0.05):
            text = f"{_label(r, names)} is comparable to {_label(rref, names)} (paper {p:g} vs {pref:g})"
            v = tie_verdict(lo, hi)
        elif p is not None and pref is not None:
            better = p > pref if higher else p < pref
            text = (f"{_label(r, names)} {'beats' if better else 'trails'} {_label(rref, names)} "
                    f"(paper {p:g} vs {pref:g})")
            v = verdict(lo, hi, expected_positive=better)
        else:
            text, v = f"{_label(r, names)} vs {_label(rref, names)} (no paper numbers)", (
                "this row better" if lo > 0 else "this row worse" if hi < 0 else "not resolved")
        claims.append(f"{text}: Δ = {diff:+.2f} [{lo:+.2f}, {hi:+.2f}] → **{v}**")
    lines.append(f"**Claims** against {_label(rref, names)} (Δ = its Min minus this row's, with a 95% interval; "
                 "positive: this row is better):")
    lines += [f"- {c}" for c in claims]
    return "\n".join(lines)


def _label(r, names):
    k = parse_knobs(r["paper_knobs"])
    return (f"{r['method']} " + " ".join(f"{n}={paper.knob_label(k[n])}" for n in names if n in k)).strip()


def ordering_note(agg, spec, higher=False):
    """Our ordering of the unconditional models against the paper's; gaps inside 2x the seed spread
    are 'not resolved'."""
    col = spec.order_column
    part = agg[~agg["cond"].astype(bool)].copy()
    with_paper = [spec.paper["numbers"].get(row_key(r), (None,) * (col + 1))[col] is not None
                  for _, r in part.iterrows()]
    if sum(with_paper) >= 2:      # compare with the paper on the rows it has numbers for
        part = part[with_paper]
    if len(part) < 2:
        return ""
    names = knob_names(part)
    ours = part.sort_values("best_mean", ascending=not higher)
    paper_order = [kv for kv in part.iterrows() if row_key(kv[1]) in spec.paper["numbers"]]
    paper_order = sorted(paper_order, key=lambda kv: spec.paper["numbers"][row_key(kv[1])][col])
    best = ours.iloc[0]
    gaps = []
    for _, r in ours.iloc[1:].iterrows():
        gap = abs(r["best_mean"] - best["best_mean"])
        spread = max(r["best_std"], best["best_std"])
        if min(r["seeds"], best["seeds"]) < 2:
            verdict = "one seed: no spread to judge by, not resolved"
        else:
            verdict = "resolved" if gap > 2 * spread else "within 2× seed std, not resolved"
        gaps.append(f"{_label(r, names)}: {'-' if higher else '+'}{gap:.2f} ({verdict})")
    theirs = (". Paper, best first: " + ", ".join(_label(r, names) for _, r in paper_order)) if paper_order else (
        ". The paper has no numbers to compare with")
    return ("**Ordering.** Ours, best first: " + ", ".join(_label(r, names) for _, r in ours.iterrows())
            + theirs + f". Gaps to our best ({_label(best, names)}): " + "; ".join(gaps) + ".")


def _x(values):
    """Knob values on a log axis, infinity drawn 20x beyond the largest finite value."""
    finite = [v for v in values if np.isfinite(v)]
    far = (max(finite) if finite else 1) * 20
    return [far if not np.isfinite(v) else v for v in values], far


def is_methods_table(spec):
    """A table whose rows are several model families (a methods comparison, e.g. PFGM's table), not one
    family over a knob (PFGM++'s D): it is drawn as one bar per row rather than against the knob."""
    return len({row.family for row in spec.rows}) > 1


def best_plot_name(spec):
    return f"{spec.name}_{'methods' if is_methods_table(spec) else 'metric_vs_knob'}.png"


def plot_best(df, spec, path):
    (plot_methods if is_methods_table(spec) else plot_metric_vs_knob)(df, spec, path)


def plot_methods(df, spec, path):
    """One bar per row, best first: ours (Min over checkpoints, mean ± std over seeds, the data floor
    dotted) beside the paper's number for the same row, where the paper has one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    higher = df["metric"].iloc[0] in HIGHER_IS_BETTER
    agg = across_seeds(per_seed(df)).sort_values("best_mean", ascending=not higher).reset_index(drop=True)
    names = knob_names(agg)
    labels = [_label(r, names) + (" cond." if r["cond"] else "") for _, r in agg.iterrows()]
    y = np.arange(len(agg))
    columns = spec.paper.get("columns", ())
    panels = 2 if columns else 1      # GenPhys' proposals come with no paper numbers: ours alone
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 1.6 + 0.4 * len(agg)), dpi=110, sharey=True,
                             squeeze=False)
    ax = axes[0][0]
    ax.barh(y, agg["best_mean"], xerr=agg["best_std"].fillna(0), color="C0", capsize=3)
    if agg["floor"].notna().any():
        ax.axvline(agg["floor"].iloc[0], color="0.4", ls=":", label="data floor")
        ax.legend(fontsize=8, loc="lower right")
    seeds = "/".join(str(int(n)) for n in sorted(agg["seeds"].unique()))
    ax.set_xlabel(f"Min {df['metric'].iloc[0]} (ours; mean ± std over {seeds} seeds)")
    ax.set_title(f"Ours ({df['preset'].iloc[0]}, {df['scale'].iloc[0]} scale)"
                 + ("" if columns else ": the paper reports no numbers"), fontsize=9 if not columns else None)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    if columns:
        col = spec.order_column
        theirs = [spec.paper["numbers"].get(row_key(r), (None,) * (col + 1))[col] for _, r in agg.iterrows()]
        ax = axes[0][1]
        have = [(i, v) for i, v in zip(y, theirs) if v is not None]
        if have:
            ax.barh([i for i, _ in have], [v for _, v in have], color="C3")
        for i, v in zip(y, theirs):
            if v is None:
                ax.text(0.02, i, "no paper number", va="center", fontsize=7, transform=ax.get_yaxis_transform())
        ax.set_xlabel(f"{columns[col]} (paper)")
        ax.set_title(f"Paper ({spec.paper['resolution']}): the paper's numbers, not ours", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_metric_vs_knob(df, spec, path):
    """Ours (Min over checkpoints, mean ± std over seeds) and the paper's numbers against the knob."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = across_seeds(per_seed(df))
    names = knob_names(df)
    if not names:
        return
    knob = names[0]
    agg["x"] = [parse_knobs(t).get(knob, np.nan) for t in agg["paper_knobs"]]
    agg = agg[agg["x"].notna()]
    col = spec.order_column
    paper_pts = [(dict(k[1]).get(knob), v[col], k[2]) for k, v in spec.paper["numbers"].items()
                 if dict(k[1]).get(knob) and v[col] is not None]
    xs_all, far = _x(list(agg["x"]) + [p[0] for p in paper_pts])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    ax = axes[0]
    for cond, style in ((False, "o-"), (True, "s--")):
        part = agg[agg["cond"].astype(bool) == cond].sort_values("x")
        if part.empty:
            continue
        ax.errorbar([far if not np.isfinite(v) else v for v in part["x"]], part["best_mean"], yerr=part["best_std"], fmt=style, capsize=3,
                    label=("class-cond." if cond else "uncond.") + " (ours)")
    if agg["floor"].notna().any():
        ax.axhline(agg["floor"].iloc[0], color="0.6", ls=":", label="data floor")
    ax.set_ylabel(f"Min {df['metric'].iloc[0]} (ours)")
    ax.set_title(f"Ours ({df['preset'].iloc[0]}, {df['scale'].iloc[0]} scale)")
    ax = axes[1]
    for cond, style, colour in ((False, "o-", "C3"), (True, "s--", "C4")):
        pts = sorted((p[0], p[1]) for p in paper_pts if p[2] == cond)
        if pts:
            ax.plot([far if not np.isfinite(x) else x for x, _ in pts], [y for _, y in pts], style, color=colour,
                    label=("class-cond." if cond else "uncond.") + " (paper)")
    ax.set_ylabel(spec.paper["columns"][spec.order_column] + " (paper)")
    ax.set_title(f"Paper ({spec.paper['resolution']})")
    ticks = sorted(set(xs_all))
    for a in axes:
        a.set_xscale("log")
        a.minorticks_off()   # the log axis's own minor labels would overprint the knob labels
        a.set_xlabel(f"{knob} (paper scale; rightmost ∞)")
        a.set_xticks(ticks)
        a.set_xticklabels(["∞" if t == far else paper.knob_label(t) for t in ticks], fontsize=7, rotation=30)
        a.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def stress_summary(df, kind):
    """Mean and std over seeds of the metric per model and stress value."""
    col = STRESS[kind]["column"]
    d = _identity(df)
    g = d.groupby(IDENTITY + ["method", "knobs", col], dropna=False)["value"].agg(["mean", "std", "count"])
    g = g.reset_index()
    g["std"] = g["std"].fillna(0.0)
    return g


def render_stress_table(df, spec):
    """Robustness layout: the metric at each stress value per model, ours beside the paper's."""
    kind = spec.stress
    col = STRESS[kind]["column"]
    s = stress_summary(df, kind)
    values = sorted(s[col].unique(), reverse=kind != "alpha")
    names = knob_names(df)
    pvals = list(spec.paper.get("values", ()))
    extra = ""
    if kind == "quant":
        extra = (f", rule `{df['quant_rule'].iloc[0]}`, "
                 f"{int(df['quantised_params'].dropna().iloc[0]):,} parameters in "
                 f"{int(df['quantised_tensors'].dropna().iloc[0])} tensors quantised per model")
    lines = header_lines(df, spec, f"of each model's best checkpoint{extra}")
    lines.append(f"Paper: {spec.paper['source']} — the paper's numbers, not ours." if pvals else
                 f"Paper: {spec.paper['source']}: no numbers are reproduced here.")
    fmt = (lambda v: f"{v:g}")
    head = (["Method"] + [f"{n} (paper)" for n in names] + [f"{n} (ours)" for n in names]
            + [f"{STRESS[kind]['label'].split(' (')[0]} {fmt(v)} (ours)" for v in values]
            + [f"{fmt(v)} (paper)" for v in pvals])
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ident, g in sorted(s.groupby(IDENTITY, dropna=False), key=lambda kv: _sort_key(kv[1].iloc[0], spec)):
        first = g.iloc[0]
        cells = [first["method"]] + _knob_cells(first["paper_knobs"], names) + _knob_cells(first["knobs"], names)
        for v in values:
            r = g[g[col] == v]
            cells.append(_pm(r["mean"].iloc[0], r["std"].iloc[0], int(r["count"].iloc[0])) if len(r) else "–")
        p = spec.paper["numbers"].get(row_key(first))
        cells += [f"{x:.2f}" for x in p] if p else ["–"] * len(pvals)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", stress_note(df, spec), ""]
    return "\n".join(lines)


def _degradations(df, col, harsh, mild):
    """Per model: per-seed degradation (metric at `harsh` minus at `mild`) and its sampling error."""
    out = {}
    for ident, g in _identity(df).groupby(IDENTITY, dropna=False):
        deg, ses = [], []
        for _, gs in g.groupby("seed"):
            hi, lo = gs[gs[col] == harsh], gs[gs[col] == mild]
            if len(hi) and len(lo):
                deg.append(hi["value"].iloc[0] - lo["value"].iloc[0])
                se = np.hypot(pd.to_numeric(hi["value_se"], errors="coerce").iloc[0],
                              pd.to_numeric(lo["value_se"], errors="coerce").iloc[0]) if "value_se" in gs else np.nan
                ses.append(se)
        if deg:
            out[ident] = (g.iloc[0], np.array(deg), np.array(ses))
    return out


def stress_note(df, spec):
    """Degradation (harsh minus mild setting) per model with 95% intervals (bootstrap over seeds and
    samples); the table's resolution; and the paper's claim that a smaller D degrades less, as a
    verdict per row against the reference (EDM). For quantisation, the onset: the most bits at which
    some model already degrades beyond its interval, where the D ordering is judged."""
    from pfgmbench.tables.stats import difference, resolution, summarise_cells, verdict

    kind = spec.stress
    col = STRESS[kind]["column"]
    mild = STRESS[kind]["mild"](df[col])
    names = knob_names(df)
    settings = sorted(df[col].unique(), reverse=kind == "quant")
    onset = None
    for v in settings if kind == "quant" else ():    # from the most bits to the fewest
        if v == mild:
            continue
        st = summarise_cells({k: (d, se) for k, (_, d, se) in _degradations(df, col, v, mild).items()})
        if any(x["lo"] > 0 for x in st.values()):
            onset = v
            break
    harsh = STRESS[kind]["harsh"](df[col])
    lines = []
    for label, at in (("harshest setting", harsh), ("onset of degradation", onset)):
        if at is None or (label == "onset of degradation" and at == harsh):
            continue
        degs = _degradations(df, col, at, mild)
        st = summarise_cells({k: (d, se) for k, (_, d, se) in degs.items()})
        parts = [f"{_label(r, names)}: {st[k]['mean']:+.2f} [{st[k]['lo']:+.2f}, {st[k]['hi']:+.2f}]"
                 for k, (r, _, _) in sorted(degs.items(), key=lambda kv: parse_knobs(kv[1][0]["knobs"]).get(
                     names[0] if names else "", 0))]
        lines.append(f"**Degradation at {col.replace('_', ' ')} = {at:g}** ({label}) vs {mild:g}, per model, "
                     f"95% interval: " + "; ".join(parts) + f". Resolution: about {resolution(st):.2f}.")
        ref = next((k for k, (r, _, _) in degs.items() if spec.reference is not None
                    and row_key(r) == spec.reference.paper_key), None)
        if ref is None:
            continue
        verdicts = []
        for k, (r, _, _) in degs.items():
            if k == ref:
                continue
            diff, lo, hi = difference(st[k], st[ref])    # reference's degradation minus this row's
            verdicts.append(f"{_label(r, names)} degrades less than {_label(degs[ref][0], names)}: "
                            f"Δ = {diff:+.2f} [{lo:+.2f}, {hi:+.2f}] → **{verdict(lo, hi)}**")
        lines.append(f"Claim (PFGM++: smaller D is more robust), at {col.replace('_', ' ')} = {at:g}:\n"
                     + "\n".join(f"- {v}" for v in verdicts))
    if kind == "quant" and onset is None:
        lines.append("No model degrades beyond its interval at any bit count tried: the claim is not resolved.")
    return "\n\n".join(lines)


def plot_stress(df, spec, path):
    """Metric vs the stress knob, one line per model (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = spec.stress
    col = STRESS[kind]["column"]
    s = stress_summary(df, kind)
    names = knob_names(df)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    for ident, g in sorted(s.groupby(IDENTITY, dropna=False), key=lambda kv: _sort_key(kv[1].iloc[0], spec)):
        g = g.sort_values(col)
        first = g.iloc[0]
        ax.errorbar(g[col], g["mean"], yerr=g["std"], fmt="o-", capsize=3, ms=4,
                    label=f"{_label(first, names)} (ours {first['knobs']})")
    ax.set_xlabel(STRESS[kind]["label"])
    ax.set_ylabel(f"{df['metric'].iloc[0]} (ours)")
    if kind == "quant":
        ax.invert_xaxis()
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(f"{spec.name}: {df['preset'].iloc[0]}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
