"""`pfgmbench reproduce table1|table2 --scale proxy|paper`: sweep, CSV, Markdown, plot, grids.

Proxy scale runs on a CPU in minutes on the embedded digits (N = 64); paper scale runs the
same code with the CIFAR-10 / FFHQ-64 presets on GPUs (50k samples, FID, snapshots from
100 / 150 Mimg on). Outputs land in results/<table>-<scale>/ with a provenance.json.
"""
import json
import math
import time
from pathlib import Path

from pfgmbench import checkpoint
from pfgmbench.atomic import atomic_path, write_text
from pfgmbench.errors import UserError
from pfgmbench.paper_numbers import D_label
from pfgmbench.provenance import git_commit, now

INF = math.inf

SPECS = {
    ("table1", "proxy"): {"preset": "digits-table", "cond_preset": "digits-table", "uncond": [64, 128, 2048, 3072000, INF],
                          "cond": [2048, INF], "seeds": "0,1", "metric": "fd-digits", "num": 1000,
                          "score_from_kimg": None},
    ("table1", "paper"): {"preset": "cifar10-ncsnpp", "cond_preset": "cifar10-ncsnpp-cond",
                          "uncond": [64, 128, 2048, 3072000, INF], "cond": [2048, INF], "seeds": "0",
                          "metric": "fid", "num": 50000, "score_from_kimg": 100000},
    ("table2", "proxy"): {"preset": "digits-table", "cond_preset": None, "uncond": [128, 2048, 3072000, INF],
                          "cond": [], "seeds": "0,1", "metric": "fd-digits", "num": 1000, "score_from_kimg": None,
                          "steps": 40, "paper_N": 12288},
    ("table2", "paper"): {"preset": "ffhq64-ddpmpp", "cond_preset": None, "uncond": [128, 2048, 3072000, INF],
                          "cond": [], "seeds": "0", "metric": "fid", "num": 50000, "score_from_kimg": 150000},
}


def reproduce_table(what, scale, seeds=None, out_dir=None, runs_dir="runs", inception=None, ref_stats=None,
                    kimg=None, num=None, device="auto", progress=True, log=print):
    from pfgmbench.cli import _make_spec
    from pfgmbench.report import load_results, plot_metric_vs_D, render_table
    from pfgmbench.runs import run_sweep

    sp = SPECS[(what, scale)]
    table = what[-1]
    out = Path(out_dir or f"results/{what}-{scale}")
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    t0 = time.time()
    sets = [f"paper_N={sp['paper_N']}"] if "paper_N" in sp else []
    groups = [(sp["preset"], sp["uncond"], False)]
    if sp["cond"]:
        groups.append((sp["cond_preset"], sp["cond"], True))
    for preset, values, cond in groups:
        values = _mappable(values, preset, sets, log)
        spec = _make_spec(preset=preset, values=",".join("inf" if math.isinf(v) else f"{v:g}" for v in values),
                          seeds=seeds or sp["seeds"], metric=sp["metric"], num=num or sp["num"],
                          steps=sp.get("steps"), kimg=kimg, score_from_kimg=sp["score_from_kimg"], cond=cond,
                          absolute=False, sets=sets, ref_stats=ref_stats, inception=inception,
                          runs_dir=runs_dir, device=device, table=table)
        run_sweep(spec, csv_path, progress=progress, log=log)
    wall = time.time() - t0
    df = load_results(csv_path, table)
    md = render_table(df, table)
    write_text(out / f"{what}.md", md)
    plot_metric_vs_D(df, out / f"{what}_metric_vs_D.png", table)
    sample_grids(df, out / f"{what}_samples_by_D.png")
    prov_path = out / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {"invocations": []}
    prov["invocations"].append({"command": f"pfgmbench reproduce {what} --scale {scale}", "commit": git_commit(),
                                "finished": now(), "wall_s": round(wall, 1), "seeds": seeds or sp["seeds"],
                                "csv_rows": int(len(df))})
    write_text(prov_path, json.dumps(prov, indent=2) + "\n")
    return md


def _mappable(values, preset, sets, log):
    """Drop paper D values that map below D = 1 at this preset's N (said in the log and table)."""
    from pfgmbench.config import resolve
    from pfgmbench.runs import data_N, proxy_D

    base = resolve(preset, sets=sets)
    keep = []
    for v in values:
        try:
            proxy_D(v, data_N(base), base["paper_N"], base["scale"] == "paper")
            keep.append(v)
        except UserError as e:
            log(f"skipping D={v:g}: {e}")
    return keep


def sample_grids(df, path, n=36):
    """One panel of samples per D (first seed, unconditional, last scored snapshot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from pfgmbench.generate import sample_images
    from pfgmbench.sample import to_uint8

    first = df[(df["cond"] == 0) & (df["seed"] == df["seed"].min())]
    rows = first.sort_values("kimg").groupby("D_paper").tail(1).sort_values("D")
    if rows.empty:
        return
    fig, axes = plt.subplots(1, len(rows), figsize=(2.2 * len(rows), 2.8), dpi=110, squeeze=False)
    for ax, (_, r) in zip(axes[0], rows.iterrows()):
        cfg, net, snap = checkpoint.load_network(r["checkpoint"])
        shape = tuple(snap["data_shape"])
        _, x, _ = next(sample_images(net, cfg, shape, snap["num_classes"], list(range(n)),
                                     int(r["steps"]), n, "cpu"))
        imgs = to_uint8(x).numpy()
        side = int(math.ceil(math.sqrt(n)))
        C, H, W = shape
        canvas = np.zeros((side * (H + 1), side * (W + 1), C), np.uint8)
        for i, im in enumerate(imgs):
            rr, cc = divmod(i, side)
            canvas[rr * (H + 1):rr * (H + 1) + H, cc * (W + 1):cc * (W + 1) + W] = im.transpose(1, 2, 0)
        ax.imshow(canvas[:, :, 0] if C == 1 else canvas, cmap="gray", interpolation="nearest")
        ax.set_title(f"paper D={D_label(r['D_paper'])}\nours D={D_label(r['D'])}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def reproduce_robustness(what, scale, seeds=None, out_dir=None, runs_dir="runs", inception=None, ref_stats=None,
                         num=None, device="auto", progress=True, log=print):
    """table3 (FID vs weight bits) or alpha (FID vs sampler noise): reuse -- or first run -- the
    Table 1 D sweep, then stress its best checkpoints."""
    from pfgmbench.evaluate import device_for
    from pfgmbench.report import plot_robustness, render_table3
    from pfgmbench.robustness import load_robustness, run_robustness

    # the Table 1 sweep beside this output (same results root), whose models are stressed
    sweep_dir = (Path(out_dir).parent if out_dir else Path("results")) / f"table1-{scale}"
    D_values = [64, 128, 2048, INF]
    if not (sweep_dir / "results.csv").exists():
        log(f"no Table 1 sweep in {sweep_dir}: running it first (resumable)")
        reproduce_table("table1", scale, seeds, str(sweep_dir), runs_dir, inception, ref_stats, None, None,
                        device, progress, log)
    out = Path(out_dir or f"results/{what}-{scale}")
    out.mkdir(parents=True, exist_ok=True)
    kind = "quant" if what == "table3" else "alpha"
    values = [9, 8, 7, 6, 5] if kind == "quant" else [round(0.05 * i, 2) for i in range(10)]
    num = num or (50000 if scale == "paper" else 500)
    t0 = time.time()
    run_robustness(kind, values, sweep_dir / "results.csv", out / "results.csv", None, num, "paper", D_values,
                   str(device_for(device)), inception, ref_stats, progress, log)
    df = load_robustness(out / "results.csv", kind)
    plot_robustness(df, kind, out / f"{what}_{'metric_vs_bits' if kind == 'quant' else 'metric_vs_alpha'}.png")
    if kind == "quant":
        md = render_table3(df)
    else:
        md = render_alpha(df)
    write_text(out / f"{what}.md", md)
    prov_path = out / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {"invocations": []}
    prov["invocations"].append({"command": f"pfgmbench reproduce {what} --scale {scale}", "commit": git_commit(),
                                "finished": now(), "wall_s": round(time.time() - t0, 1), "csv_rows": int(len(df)),
                                "source_sweep": str(sweep_dir / "results.csv")})
    write_text(prov_path, json.dumps(prov, indent=2) + "\n")
    return md


def render_alpha(df):
    from pfgmbench.report import _pm, robustness_note
    from pfgmbench.robustness import summarise

    s = summarise(df, "alpha")
    alphas = sorted(s["alpha"].unique())
    metric = df["metric"].iloc[0]
    lines = ["## PFGM++ robustness to sampler noise alpha (x <- x + alpha t_i eps before each step)", "",
             f"Ours: `{metric}` (lower is better) on n = {int(df['n'].iloc[0])} samples of the best checkpoint of "
             f"each model, eps drawn from the per-seed generators, mean ± std over training seeds; commit "
             f"{', '.join(sorted(set(df['commit'].astype(str))))}. The paper shows this as a figure (FID vs alpha, "
             "CIFAR-10), not a table: no paper numbers are reproduced here.", "",
             "| D (paper) | D (ours) | " + " | ".join(f"α={a:g}" for a in alphas) + " |",
             "|---|---|" + "---|" * len(alphas)]
    for (Dp, D), g in s.groupby(["D_paper", "D"], sort=False):
        cells = []
        for a in alphas:
            r = g[g["alpha"] == a]
            cells.append(_pm(r["mean"].iloc[0], r["std"].iloc[0], int(r["count"].iloc[0])) if len(r) else "–")
        lines.append(f"| {D_label(Dp)} | {D_label(D)} | " + " | ".join(cells) + " |")
    lines += ["", robustness_note(df, "alpha", max(alphas)), ""]
    return "\n".join(lines)
