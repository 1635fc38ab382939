"""CSV -> Markdown tables in the papers' layout (ours beside the paper's, labelled) and plots."""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pfgmbench.atomic import atomic_path
from pfgmbench.errors import UserError
from pfgmbench.paper_numbers import TABLES, D_label


def load_results(path, table=None):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"results file not found: {path}; run a sweep first (pfgmbench sweep-d / reproduce)")
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if table is not None and "table" in df:
        df = df[df["table"].astype(str) == str(table)]
    if df.empty:
        raise UserError(f"{path} has no rows for table {table}")
    for c in ("D_paper", "D", "value", "floor", "kimg", "nfe", "n", "floor_n", "seed", "cond"):
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def per_seed_summary(df, lower_is_better=True):
    """Per (cond, D_paper, seed): Min over checkpoints and mean of the three best."""
    rows = []
    for (cond, Dp, D, seed), g in df.groupby(["cond", "D_paper", "D", "seed"]):
        v = np.sort(g["value"].to_numpy())
        if not lower_is_better:
            v = v[::-1]
        rows.append({"cond": cond, "D_paper": Dp, "D": D, "seed": seed, "best": v[0], "top3": v[:3].mean(),
                     "n_ckpt": len(v), "nfe": int(g["nfe"].iloc[0]), "n": int(g["n"].iloc[0]),
                     "floor": g["floor"].iloc[0] if "floor" in g else float("nan"),
                     "floor_n": g["floor_n"].iloc[0] if "floor_n" in g else float("nan"),
                     "far_out": pd.to_numeric(g["far_out"], errors="coerce").mean() if "far_out" in g else float("nan")})
    return pd.DataFrame(rows)


def across_seeds(summary):
    out = []
    for (cond, Dp, D), g in summary.groupby(["cond", "D_paper", "D"]):
        out.append({"cond": cond, "D_paper": Dp, "D": D, "seeds": len(g),
                    "best_mean": g["best"].mean(), "best_std": g["best"].std(ddof=0),
                    "top3_mean": g["top3"].mean(), "top3_std": g["top3"].std(ddof=0),
                    "nfe": g["nfe"].iloc[0], "n": g["n"].iloc[0], "n_ckpt": g["n_ckpt"].min(),
                    "floor": g["floor"].iloc[0], "floor_n": g["floor_n"].iloc[0],
                    "far_out": g["far_out"].mean()})
    return pd.DataFrame(out)


def _pm(mean, std, seeds):
    return f"{mean:.2f} ± {std:.2f}" if seeds > 1 else f"{mean:.2f}"


def _pct(v):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _fmt(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return str(v) if isinstance(v, int) else f"{v:.2f}"


def render_table(df, table="1"):
    """Markdown: our numbers (mean ± std over seeds) beside the paper's, labelled."""
    paper = TABLES[str(table)]
    metric = df["metric"].iloc[0]
    agg = across_seeds(per_seed_summary(df))
    scale = df["scale"].iloc[0]
    N = int(df["N"].iloc[0])
    lines = [f"## PFGM++ Table {table} — {'proxy' if scale == 'proxy' else 'paper'} scale", ""]
    preset = df["preset"].iloc[0]
    lines.append(f"Ours: preset `{preset}`, metric `{metric}` on n = {int(agg['n'].iloc[0])} samples per "
                 f"checkpoint, {int(agg['n_ckpt'].min())} checkpoints per model, mean ± std over training "
                 f"seeds ({', '.join(str(int(s)) for s in sorted(df['seed'].unique()))}); commit "
                 f"{', '.join(sorted(set(df['commit'].astype(str))))}.")
    if scale == "proxy":
        lines.append(f"Proxy mapping: N = {N} instead of {paper['paper_N']}; D scaled by N / {paper['paper_N']} "
                     "so that D/N matches the paper (both D columns shown). The metric is not FID, so compare "
                     "orderings, not values.")
    if agg["floor"].notna().any():
        lines.append(f"Data-vs-data floor (held-out test vs train, n = {int(agg['floor_n'].iloc[0])}): "
                     f"{agg['floor'].iloc[0]:.2f}.")
    lines.append(f"Paper columns: {paper['source']} — the paper's numbers, not ours.")
    lines += ["", f"| Method | D (paper) | D (ours, N={N}) | Min {metric} ↓ (ours) | Top-3 avg {metric} ↓ (ours) "
                  "| NFE (ours) | Min FID ↓ (paper) | Top-3 avg FID ↓ (paper) | NFE (paper) | samples with max abs > 2 (ours) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for cond in (0, 1):
        part = agg[agg["cond"] == cond].sort_values("D")
        pnums = paper["cond" if cond else "uncond"]
        if part.empty and not (cond and pnums):
            continue
        if cond:
            lines.append("| *class-conditional* | | | | | | | | | |")
        shown = set()
        for _, r in part.iterrows():
            method = "EDM" if math.isinf(r["D"]) else "PFGM++"
            p = pnums.get(r["D_paper"], (None, None, None))
            shown.add(r["D_paper"])
            lines.append(f"| {method} | {D_label(r['D_paper'])} | {D_label(r['D'])} | "
                         f"{_pm(r['best_mean'], r['best_std'], r['seeds'])} | "
                         f"{_pm(r['top3_mean'], r['top3_std'], r['seeds'])} | {int(r['nfe'])} | "
                         f"{_fmt(p[0])} | {_fmt(p[1])} | {_fmt(p[2])} | {_pct(r['far_out'])} |")
        for Dp, p in pnums.items():
            if Dp not in shown:
                lines.append(f"| {'EDM' if math.isinf(Dp) else 'PFGM++'} | {D_label(Dp)} | not run | – | – | – | "
                             f"{_fmt(p[0])} | {_fmt(p[1])} | {_fmt(p[2])} | – |")
    for name, fid, nfe in paper["baselines"]:
        lines.append(f"| {name} (cited) | – | not reproduced | – | – | – | {fid:g} | – | {nfe} | – |")
    lines += ["", ordering_note(agg, paper), ""]
    return "\n".join(lines)


def ordering_note(agg, paper):
    """Does the paper's ordering of D hold? Differences inside the seed spread are 'not resolved'."""
    part = agg[agg["cond"] == 0].copy()
    part = part[part["D_paper"].isin(list(paper["uncond"]))]
    if len(part) < 2:
        return ""
    ours = part.sort_values("best_mean")
    paper_order = sorted(part["D_paper"], key=lambda d: paper["uncond"][d][0])
    best = ours.iloc[0]
    resolved = []
    for _, r in ours.iloc[1:].iterrows():
        gap = r["best_mean"] - best["best_mean"]
        spread = max(r["best_std"], best["best_std"])
        if min(r["seeds"], best["seeds"]) < 2:
            verdict = "one seed: no spread to judge by, not resolved"
        else:
            verdict = "resolved" if gap > 2 * spread else "within 2× seed std, not resolved"
        resolved.append(f"D={D_label(r['D_paper'])}: +{gap:.2f} ({verdict})")
    return ("**Ordering.** Ours, best first: " + ", ".join(D_label(d) for d in ours["D_paper"]) +
            ". Paper, best first: " + ", ".join(D_label(d) for d in paper_order) +
            f". Gaps to our best (D={D_label(best['D_paper'])}): " + "; ".join(resolved) + ".")


def plot_metric_vs_D(df, path, table="1"):
    """Ours (mean ± std over seeds, Min over checkpoints) and the paper's FID against D."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = TABLES[str(table)]
    agg = across_seeds(per_seed_summary(df))
    finite = agg.loc[np.isfinite(agg["D_paper"]), "D_paper"]
    inf_x = (finite.max() if len(finite) else 1) * 20

    def xs(vals):
        return [inf_x if math.isinf(v) else v for v in vals]

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    ax = axes[0]
    for cond, style in ((0, "o-"), (1, "s--")):
        part = agg[agg["cond"] == cond].sort_values("D_paper")
        if part.empty:
            continue
        ax.errorbar(xs(part["D_paper"]), part["best_mean"], yerr=part["best_std"], fmt=style, capsize=3,
                    label=("class-cond." if cond else "uncond.") + " (ours)")
    if agg["floor"].notna().any():
        ax.axhline(agg["floor"].iloc[0], color="0.6", ls=":", label="data floor")
    ax.set_xscale("log")
    ax.set_xlabel("D (paper scale; rightmost = ∞, EDM)")
    ax.set_ylabel(f"Min {df['metric'].iloc[0]} (ours)")
    ax.set_title(f"Ours ({df['preset'].iloc[0]})")
    ax.legend(fontsize=8)
    ax = axes[1]
    un = sorted(paper["uncond"].items(), key=lambda kv: kv[0])
    ax.plot(xs([d for d, _ in un]), [p[0] for _, p in un], "o-", color="C3", label="uncond. (paper)")
    if paper["cond"]:
        co = sorted(paper["cond"].items())
        ax.plot(xs([d for d, _ in co]), [p[0] for _, p in co], "s--", color="C4", label="class-cond. (paper)")
    ax.set_xscale("log")
    ax.set_xlabel("D (rightmost = ∞, EDM)")
    ax.set_ylabel("Min FID (paper)")
    ax.set_title("Paper (CIFAR-10)" if str(table) == "1" else "Paper")
    ax.legend(fontsize=8)
    for a in axes:
        ticks = sorted(set(xs(agg["D_paper"]) + xs([d for d, _ in un])))
        a.set_xticks(ticks)
        a.set_xticklabels(["∞" if t == inf_x else D_label(t) for t in ticks], fontsize=7, rotation=30)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def render_table3(df):
    """PFGM++ Table 3 layout: metric vs weight bits per D, ours beside the paper's FID."""
    from pfgmbench.paper_numbers import TABLE3
    from pfgmbench.robustness import summarise

    s = summarise(df, "quant")
    metric = df["metric"].iloc[0]
    bits = TABLE3["bits"]
    seeds = sorted(df["seed"].unique())
    lines = [f"## PFGM++ Table 3 — {'proxy' if df['scale'].iloc[0] == 'proxy' else 'paper'} scale: "
             "post-training weight quantisation", "",
             f"Ours: `{metric}` (lower is better) on n = {int(df['n'].iloc[0])} samples of the best checkpoint "
             f"of each model, rule `{df['quant_rule'].iloc[0]}`, mean ± std over training seeds "
             f"({', '.join(str(int(x)) for x in seeds)}); commit {', '.join(sorted(set(df['commit'].astype(str))))}.",
             f"Paper: {TABLE3['source']} — the paper's numbers, not ours.", "",
             "| D (paper) | D (ours) | " + " | ".join(f"{b} bits (ours)" for b in bits) + " | "
             + " | ".join(f"{b} bits (paper)" for b in bits) + " |",
             "|---|---|" + "---|" * (2 * len(bits))]
    for (Dp, D), g in s.groupby(["D_paper", "D"], sort=False):
        ours = []
        for b in bits:
            r = g[g["quant_bits"] == b]
            ours.append(_pm(r["mean"].iloc[0], r["std"].iloc[0], int(r["count"].iloc[0])) if len(r) else "–")
        paper = TABLE3["rows"].get(Dp)
        pcols = [f"{v:.2f}" for v in paper] if paper else ["–"] * len(bits)
        lines.append(f"| {D_label(Dp)} | {D_label(D)} | " + " | ".join(ours) + " | " + " | ".join(pcols) + " |")
    lines += ["", robustness_note(df, "quant_bits", min(bits)), ""]
    return "\n".join(lines)


def robustness_note(df, col, harshest):
    """Is smaller D more robust? Paired per model: metric at the harshest setting minus at the mildest
    (alpha = 0 / most bits), mean ± std over seeds; gaps inside 2x that std are called unresolved."""
    mild = df[col].max() if col == "quant_bits" else df[col].min()
    parts = []
    for (Dp, D), g in df.groupby(["D_paper", "D"]):
        per_seed = []
        for _, gs in g.groupby("seed"):
            hi, lo = gs[gs[col] == harshest]["value"], gs[gs[col] == mild]["value"]
            if len(hi) and len(lo):
                per_seed.append(hi.iloc[0] - lo.iloc[0])
        if per_seed:
            parts.append((D, Dp, float(np.mean(per_seed)), float(np.std(per_seed))))
    if len(parts) < 2:
        return ""
    parts.sort(key=lambda t: t[0])
    txt = "; ".join(f"D={D_label(Dp)}: {deg:+.2f} ± {sd:.2f}" for _, Dp, deg, sd in parts)
    mono = all(parts[i][2] <= parts[i + 1][2] for i in range(len(parts) - 1))
    spread = max(sd for *_, sd in parts)
    gap = parts[-1][2] - parts[0][2]
    resolved = gap > 2 * spread and spread > 0
    verdict = ("Monotone in D: smaller D degrades less" if mono else "Not monotone in D")
    verdict += (f"; smallest vs largest D differ by {gap:+.2f}, "
                + ("beyond 2x the seed spread (resolved)." if resolved else "inside 2x the seed spread (not resolved)."))
    return (f"**Degradation at {col.replace('_', ' ')} = {harshest:g}** vs {mild:g}, paired per model, by D: "
            f"{txt}. {verdict}")


def plot_robustness(df, kind, path):
    """Metric vs the knob, one line per D (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pfgmbench.robustness import knob_column, summarise

    col = knob_column(kind)
    s = summarise(df, kind)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    for (Dp, D), g in s.groupby(["D_paper", "D"], sort=False):
        ax.errorbar(g[col], g["mean"], yerr=g["std"], fmt="o-", capsize=3, ms=4,
                    label=f"D={D_label(Dp)} (ours {D_label(D)})")
    ax.set_xlabel({"alpha": "alpha (step noise x += alpha t_i eps)", "quant": "weight bits",
                   "steps": "sampler steps T (NFE = 2T - 1)"}[kind])
    ax.set_ylabel(f"{df['metric'].iloc[0]} (ours)")
    if kind == "quant":
        ax.invert_xaxis()
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(f"{kind}: {df['preset'].iloc[0]}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
