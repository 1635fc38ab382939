"""Robustness sweeps on trained checkpoints, no retraining (PFGM++ section 5, REFERENCE 2):
sampler noise alpha, post-training weight quantisation bits, and the number of steps.

The checkpoints come from a D sweep's CSV: for each (D, seed) of the unconditional models,
the checkpoint with the best metric. One CSV row per (checkpoint, knob value), resumable.
"""
import pandas as pd

from pfgmbench import checkpoint, distributed
from pfgmbench.errors import UserError
from pfgmbench.quantize import quantize_model, top_resolution
from pfgmbench.results_csv import ResultsCSV, cell_key
from pfgmbench.runs import COLUMNS, row_from

KINDS = ("alpha", "quant", "steps")


def source_checkpoints(sweep_csv, D_values=None):
    from pfgmbench.report import load_results

    df = load_results(sweep_csv)
    df = df[df["cond"] == 0]
    if D_values is not None:
        df = df[df["D_paper"].isin(D_values)]
    if df.empty:
        raise UserError(f"{sweep_csv} has no unconditional models for these D values; run the D sweep first")
    best = df.loc[df.groupby(["D_paper", "seed"])["value"].idxmin()]
    return best.sort_values(["D", "seed"]).to_dict("records")


def parse_values(kind, text):
    try:
        vals = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--values expects numbers like 0,0.1,0.2, got '{text}'") from None
    if not vals:
        raise UserError("--values needs at least one value")
    if kind == "alpha" and min(vals) < 0:
        raise UserError("alpha values must be >= 0")
    if kind in ("quant", "steps"):
        if any(v != int(v) for v in vals):
            raise UserError(f"{kind} values must be integers")
        vals = [int(v) for v in vals]
        if kind == "steps" and min(vals) < 2:
            raise UserError("steps values must be >= 2")
    return vals


def run_robustness(kind, values, sweep_csv, out_csv, metric=None, num=1000, quant_rule="paper",
                   D_values=None, device="cpu", inception=None, ref_stats=None, progress=True, log=print):
    from pfgmbench.evaluate import Scorer, score_snapshot

    if kind not in KINDS:
        raise UserError(f"unknown robustness kind '{kind}'; choose {', '.join(KINDS)}")
    sources = source_checkpoints(sweep_csv, D_values)
    metric = metric or sources[0]["metric"]
    table = ResultsCSV(out_csv, COLUMNS, write=distributed.is_main())
    done = table.keys()
    scorer, new = None, 0
    seeds = list(range(num))
    for src in sources:
        ckpt = src["checkpoint"]
        snap_meta = checkpoint.load(ckpt, checkpoint.SNAPSHOT_FORMAT)
        cfg = snap_meta["config"]
        for v in values:
            key = cell_key({"ckpt": ckpt, "kind": kind, "value": v, "metric": metric, "num": num,
                            "rule": quant_rule if kind == "quant" else None})
            if key in done:
                continue
            if scorer is None:
                ref_ds = None if metric.endswith("digits") else cfg["data"]["name"]
                scorer = Scorer(metric, ref_stats, ref_ds, inception=inception, device=device)
            steps = v if kind == "steps" else None
            alpha = v if kind == "alpha" else 0.0
            qinfo = {}

            def transform(net, bits=v):
                tensors, count, total = quantize_model(net, bits, quant_rule, top_resolution(snap_meta))
                qinfo.update(quant_bits=bits, quant_rule=quant_rule, quantised_tensors=tensors, quantised_params=count)
                return net

            res = score_snapshot(scorer, ckpt, seeds, steps, device, alpha, progress,
                                 transform if kind == "quant" else None)
            res.update(qinfo)
            row = row_from(res, key, kind, cfg, src["D_paper"], int(src["N"]), src["train_wall_s"])
            table.append(row)
            done.add(key)
            new += 1
            label = {"alpha": f"alpha={v:g}", "quant": f"{v} bits ({qinfo.get('quantised_params', 0)} params)",
                     "steps": f"T={v} (NFE {2 * v - 1})"}[kind]
            log(f"D={src['D']:g} (paper {src['D_paper']:g}) seed {int(src['seed'])} {label}: "
                f"{metric} = {res['value']:.3f}")
    return new


def load_robustness(csv_path, kind):
    from pfgmbench.report import load_results

    df = load_results(csv_path, kind)
    for c in ("alpha", "quant_bits", "steps"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def knob_column(kind):
    return {"alpha": "alpha", "quant": "quant_bits", "steps": "steps"}[kind]


def summarise(df, kind):
    """Mean and std over seeds of the metric per (D, knob value)."""
    col = knob_column(kind)
    g = df.groupby(["D_paper", "D", col])["value"].agg(["mean", "std", "count"]).reset_index()
    g["std"] = g["std"].fillna(0.0)
    return g.sort_values(["D", col])
