"""`pfgmbench reproduce WHAT --scale proxy|paper`: a table spec run end to end: sweep (or stress of
a sweep's models), CSV, Markdown, plots, sample grids, provenance.

Proxy scale runs on a CPU in minutes on the embedded digits; paper scale runs the same code with
the CIFAR-10 / FFHQ-64 presets on GPUs. Outputs land in runs/reproduce/<what>-<scale>/ (untracked,
so every clone really reruns) unless --out-dir says otherwise (e.g. results/ for the committed copy).
"""
import json
import math
import time
from pathlib import Path

from pfgmbench import checkpoint, distributed
from pfgmbench.atomic import atomic_path, write_json, write_text
from pfgmbench.errors import UserError
from pfgmbench.progress import log as default_log
from pfgmbench.provenance import git_commit, now
from pfgmbench.seeds import parse_seeds
from pfgmbench.tables import render
from pfgmbench.tables.paper import knob_label
from pfgmbench.tables.results import load_results, parse_knobs
from pfgmbench.tables.specs import canonical
from pfgmbench.tables.specs import spec as table_spec
from pfgmbench.tables.sweep import cells, make_spec, run_sweep

DEFAULT_ROOT = Path("runs/reproduce")


def default_out_dir(what, scale):
    return DEFAULT_ROOT / f"{what}-{scale}"


def reproduce(what, scale, seeds=None, out_dir=None, runs_dir="runs", inception=None, ref_stats=None, kimg=None,
              num=None, device="auto", progress=True, log=default_log, from_checkpoints=None):
    """Run table `what` at `scale`; returns its Markdown."""
    what = canonical(what)   # an alias writes to the same folder as the table's own name
    if what == "genphys":   # the s-generative table, then the Yukawa studies on a 2-D toy and on digits
        from pfgmbench.genphys.report import write_table

        root = Path(out_dir or default_out_dir(what, scale))
        parts = [write_table(root)]
        for sub in ("genphys-toy", "genphys-digits"):
            parts.append(reproduce(sub, scale, seeds, str(root / sub), runs_dir, inception, ref_stats, kimg, num,
                                   device, progress, log))
        md = "\n".join(parts)
        if distributed.is_main():
            write_text(root / "genphys.md", md)
        return md
    spec = table_spec(what)
    sc = spec.scale(scale)
    out = Path(out_dir or default_out_dir(what, scale))
    if out.exists() and not out.is_dir():
        raise UserError(f"--out-dir {out} is a file; pass a folder")
    t0 = time.time()
    if from_checkpoints and not spec.stress:
        raise UserError(f"--from-checkpoints works for the robustness tables (table3, alpha, steps), not {what}")
    if spec.stress:
        md, rows = _stress(spec, scale, sc, seeds, out, runs_dir, inception, ref_stats, num, device, progress, log,
                           from_checkpoints)
    else:
        md, rows = _best(spec, scale, sc, seeds, out, runs_dir, inception, ref_stats, kimg, num, device, progress, log)
    if distributed.is_main():
        prov_path = out / "provenance.json"
        prov = json.loads(prov_path.read_text()) if prov_path.exists() else {"invocations": []}
        prov["invocations"].append({"command": f"pfgmbench reproduce {what} --scale {scale}", "commit": git_commit(),
                                    "finished": now(), "wall_s": round(time.time() - t0, 1),
                                    "seeds": seeds or sc.seeds, "csv_rows": rows})
        write_json(prov_path, prov)
    distributed.barrier()
    return md


def _mappable(rows, preset, sets, paper_N, log):
    """Rows whose paper knobs have a counterpart at this preset's N (the others are said in the log
    and shown as 'not run' in the table)."""
    keep = []
    for row in rows:
        try:
            cells(make_spec(preset, [row], [0], sets=sets, paper_N=paper_N))
            keep.append(row)
        except UserError as e:
            log(f"skipping {row.family} {row.knob_dict}: {e}")
    return keep


def _best(spec, scale, sc, seeds, out, runs_dir, inception, ref_stats, kimg, num, device, progress, log):
    csv_path = out / "results.csv"
    groups = {}
    for r in spec.rows:   # one sweep per preset: the table's, its conditional one, or a family's own
        preset = sc.cond_preset if r.cond else sc.family_presets.get(r.family, sc.preset)
        groups.setdefault(preset, []).append(r)
    for preset, rows in groups.items():
        rows = rows if sc.absolute else _mappable(rows, preset, sc.sets, sc.paper_N, log)
        if not rows:
            continue
        sw = make_spec(preset, rows, parse_seeds(seeds or sc.seeds), sc.metric, num or sc.num, sc.steps,
                       kimg or sc.kimg, sc.score_from_kimg, absolute=sc.absolute, sets=sc.sets, ref_stats=ref_stats,
                       inception=inception, runs_dir=runs_dir, device=device, table=spec.name, paper_N=sc.paper_N,
                       score_last=sc.score_last)
        run_sweep(sw, csv_path, progress=progress, log=log)
    df = load_results(csv_path, spec.name)
    df = _with_optional_rows(df, spec, out.parent, scale)
    md = render.render_best_table(df, spec) + _side_by_side(spec, df, out.parent, scale, log)
    if distributed.is_main():      # under torchrun: one rank writes the table, the plot and the grids
        from pfgmbench.evaluate import device_for

        write_text(out / f"{spec.name}.md", md)
        render.plot_best(df, spec, out / render.best_plot_name(spec))
        sample_grids(df, out / f"{spec.name}_samples.png", device=device_for(device))
    distributed.barrier()
    return md, int(len(df))


def _side_by_side(spec, df, root, scale, log):
    """The table beside the one it re-maps (spec.beside), when that table's results sit in the same
    folder of outputs, on the same data and metric; else nothing."""
    if not spec.beside:
        return ""
    other = root / f"{spec.beside}-{scale}" / "results.csv"
    if not other.exists():
        log(f"no {spec.beside} results in {other.parent}: run `pfgmbench reproduce {spec.beside}` there to see "
            "both mappings side by side")
        return ""
    o = load_results(other, spec.beside)
    if o.empty or o["data"].iloc[0] != df["data"].iloc[0] or o["metric"].iloc[0] != df["metric"].iloc[0]:
        return ""
    return "\n" + render.render_side_by_side((table_spec(spec.beside), o), (spec, df))


def _with_optional_rows(df, spec, root, scale):
    """A table's optional rows (e.g. Table 1's cited baselines) from the other tables' results beside
    it, when they ran the same models at this scale: the same data and metric, and trained as long
    (a 30-kimg baseline beside 90-kimg models would measure the budget, not the method)."""
    import pandas as pd

    keys = {r.paper_key for r in spec.optional}
    if not keys or df.empty:
        return df
    budget = df["kimg"].max()
    for other in sorted(root.glob(f"*-{scale}/results.csv")):
        if other.parent.name == f"{spec.name}-{scale}":
            continue
        try:
            o = load_results(other)
        except UserError:
            continue
        o = o[o["family"].notna() & (o["family"].astype(str) != "")]   # an older layout's rows name no family
        if o.empty:
            continue
        o = o[[render.row_key(r) in keys for _, r in o.iterrows()]]
        o = o[(o["data"] == df["data"].iloc[0]) & (o["metric"] == df["metric"].iloc[0])]
        if o.empty:
            continue
        trained = o.groupby(o["checkpoint"].map(lambda c: str(Path(c).parent)))["kimg"].transform("max")
        o = o[(trained - budget).abs() <= 0.1 * budget]   # each model's last snapshot: its training length
        if not o.empty:
            df = pd.concat([df, o.assign(table=spec.name)], ignore_index=True)
    return df


def _stress(spec, scale, sc, seeds, out, runs_dir, inception, ref_stats, num, device, progress, log,
            from_checkpoints=None):
    from pfgmbench.evaluate import device_for
    from pfgmbench.tables.robustness import (
        checkpoint_sources,
        load_robustness,
        run_robustness,
    )

    knobs = [r.knob_dict for r in spec.rows if not r.cond]
    if from_checkpoints:   # the authors' released models, imported safely: no training
        sources = checkpoint_sources(from_checkpoints)
        metric = sc.metric
    else:
        source = table_spec(sc.source_table or spec.source_table)
        sweep_dir = out.parent / f"{source.name}-{scale}"   # the source table's run beside this output
        if not (sweep_dir / "results.csv").exists():
            log(f"no {source.name} sweep in {sweep_dir}: running it first (resumable)")
            reproduce(source.name, scale, seeds, str(sweep_dir), runs_dir, inception, ref_stats, None, None, device,
                      progress, log)
        sources, metric = sweep_dir / "results.csv", None
    run_robustness(spec.stress, list(spec.stress_values), sources, out / "results.csv", metric,
                   num or sc.num, sc.quant_rule, knobs, str(device_for(device)), inception, ref_stats, progress, log,
                   table=spec.name)
    df = load_robustness(out / "results.csv", spec.stress, spec.name)
    md = render.render_stress_table(df, spec)
    if distributed.is_main():
        write_text(out / f"{spec.name}.md", md)
        render.plot_stress(df, spec, out / f"{spec.name}_metric_vs_{spec.stress}.png")
    distributed.barrier()
    return md, int(len(df))


def sample_grids(df, path, n=36, device="cpu"):
    """One panel of samples per model (first seed, unconditional, last scored snapshot): an image grid, or
    for 2-D toys 1000 samples over the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from pfgmbench.generate import sample_images
    from pfgmbench.images_io import to_uint8

    first = df[(df["cond"] == 0) & (df["seed"] == df["seed"].min())]
    rows = first.sort_values("kimg").groupby(["family", "paper_knobs"]).tail(1)
    rows = rows.assign(order=[next(iter(parse_knobs(t).values()), 0) for t in rows["paper_knobs"]]).sort_values("order")
    if rows.empty:
        return
    fig, axes = plt.subplots(1, len(rows), figsize=(2.2 * len(rows), 2.8), dpi=110, squeeze=False)
    for ax, (_, r) in zip(axes[0], rows.iterrows()):
        cfg, net, snap = checkpoint.load_network(r["checkpoint"], device)
        shape = tuple(snap["data_shape"])
        sampler = r["sampler"] if isinstance(r["sampler"], str) and r["sampler"] else None
        pk, ok = parse_knobs(r["paper_knobs"]), parse_knobs(r["knobs"])
        ax.set_title(f"{r['method']}\n" + " ".join(f"{k}={knob_label(pk[k])} (ours {knob_label(ok.get(k, pk[k]))})"
                                                    for k in pk), fontsize=7)
        if shape == (2,):   # 2-D toys: the samples over the data
            from pfgmbench.data import load_dataset

            pts = load_dataset(cfg["data"]).data[:2000].numpy()
            _, x, _ = next(sample_images(net, cfg, shape, snap["num_classes"], list(range(1000)), int(r["steps"]),
                                         1000, device, sampler=sampler))
            ax.scatter(pts[:, 0], pts[:, 1], s=1, color="0.8", label="data")
            ax.scatter(x[:, 0].cpu(), x[:, 1].cpu(), s=1, color="C0", label="samples")
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        if len(shape) != 3:
            ax.axis("off")
            continue
        _, x, _ = next(sample_images(net, cfg, shape, snap["num_classes"], list(range(n)), int(r["steps"]), n, device,
                                     sampler=sampler))
        imgs = to_uint8(x.cpu()).numpy()
        side = int(math.ceil(math.sqrt(n)))
        C, H, W = shape
        canvas = np.zeros((side * (H + 1), side * (W + 1), C), np.uint8)
        for i, im in enumerate(imgs):
            rr, cc = divmod(i, side)
            canvas[rr * (H + 1):rr * (H + 1) + H, cc * (W + 1):cc * (W + 1) + W] = im.transpose(1, 2, 0)
        ax.imshow(canvas[:, :, 0] if C == 1 else canvas, cmap="gray", interpolation="nearest")
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def render_csv(results_csv, name, out_md=None, plot=None):
    """`pfgmbench table`: render a results CSV with table spec `name`; returns the Markdown."""
    spec = table_spec(name)
    if spec.stress:
        from pfgmbench.tables.robustness import load_robustness

        df = load_robustness(results_csv, spec.stress)
        md = render.render_stress_table(df, spec)
    else:
        df = load_results(results_csv)
        md = render.render_best_table(df, spec)
    if out_md:
        write_text(out_md, md)
    if plot:
        (render.plot_stress if spec.stress else render.plot_best)(df, spec, plot)
    return md
