"""Robustness sweeps on trained checkpoints, no retraining (PFGM++ section 5, REFERENCE 2):
sampler noise alpha, post-training weight quantisation bits, and the number of sampler steps.

The checkpoints come from a sweep's CSV: for each unconditional model and seed, the checkpoint
with the best metric. One CSV row per (checkpoint, stress value), resumable.
"""
from pfgmbench import checkpoint, distributed
from pfgmbench.errors import UserError
from pfgmbench.metrics import HIGHER_IS_BETTER
from pfgmbench.progress import log as default_log
from pfgmbench.quantize import RULES, quantize_model, top_resolution
from pfgmbench.tables.results import (
    COLUMNS,
    ResultsCSV,
    cell_key,
    load_results,
    parse_knobs,
    row_from,
)
from pfgmbench.tables.specs import STRESS

KINDS = tuple(STRESS)


def source_checkpoints(sweep_csv, paper_knobs=None):
    """The best checkpoint of every (unconditional model, seed) in a sweep; `paper_knobs`: keep only
    models whose paper knobs are in this list of dicts."""
    df = load_results(sweep_csv)
    df = df[df["cond"] == 0]
    if paper_knobs is not None:
        df = df[[parse_knobs(t) in paper_knobs for t in df["paper_knobs"]]]
    if df.empty:
        raise UserError(f"{sweep_csv} has no unconditional models for these knobs; run the sweep first")
    df = df.assign(sampler=df["sampler"].fillna(""), variant=df["variant"].fillna(""))
    groups = df.groupby(["family", "paper_knobs", "sampler", "variant", "seed"], dropna=False)["value"]
    pick = groups.idxmax() if df["metric"].iloc[0] in HIGHER_IS_BETTER else groups.idxmin()
    return df.loc[pick].to_dict("records")


def checkpoint_sources(folder):
    """Sources for a robustness table straight from checkpoints, no training: every run folder under
    `folder`, after importing the authors' files there (*.pkl, *.pt) into folder/imported. Knobs are
    used as the paper's (paper scale)."""
    from pathlib import Path

    from pfgmbench.data import data_N
    from pfgmbench.importer import import_checkpoint
    from pfgmbench.physics import family_class
    from pfgmbench.run_folder import is_run
    from pfgmbench.tables.results import format_knobs

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--from-checkpoints {folder}: not a folder; put the authors' .pkl / .pt files there")
    for f in sorted(list(folder.glob("*.pkl")) + list(folder.glob("*.pt"))):
        dest = folder / "imported" / f.stem
        if not is_run(dest) and distributed.is_main():    # one rank imports, the others wait
            import_checkpoint(f, dest)
    distributed.barrier()
    runs = sorted({p.parent for p in folder.rglob("config.yaml")})
    if not runs:
        raise UserError(f"no checkpoints in {folder}: expected the authors' .pkl / .pt files or run folders")
    out = []
    for i, run in enumerate(runs):
        snap = checkpoint.latest_snapshot(run)
        cfg = checkpoint.load(snap, checkpoint.SNAPSHOT_FORMAT)["config"]
        fam = family_class(cfg["physics"]["family"])
        knobs = format_knobs({k: cfg["physics"][k] for k in fam.knob_names})
        out.append({"checkpoint": str(snap), "family": fam.name, "paper_knobs": knobs, "knobs": knobs,
                    "sampler": "", "variant": "", "seed": i, "N": data_N(cfg["data"]), "train_wall_s": None,
                    "metric": None})
    return out


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
        if kind == "quant" and not all(2 <= v <= 16 for v in vals):
            raise UserError("quant values are bits between 2 and 16")
    return vals


def run_robustness(kind, values, sweep_csv, out_csv, metric=None, num=1000, quant_rule="paper",
                   paper_knobs=None, device="cpu", inception=None, ref_stats=None, progress=True, log=default_log,
                   table=None):
    from pfgmbench.evaluate import (
        Scorer,
        reference_dataset,
        score_snapshot,
        scorer_identity,
    )

    if kind not in KINDS:
        raise UserError(f"unknown robustness kind '{kind}'; choose {', '.join(KINDS)}")
    if quant_rule not in RULES:
        raise UserError(f"--quant-rule must be one of {', '.join(RULES)}")
    sources = source_checkpoints(sweep_csv, paper_knobs) if not isinstance(sweep_csv, list) else sweep_csv
    if kind == "alpha":   # refuse up front, not halfway through
        from pfgmbench.physics import family_class

        for name in sorted({s["family"] for s in sources}):
            family_class(name).require_step_noise()
    metric = metric or sources[0]["metric"]
    if metric is None:
        raise UserError("give --metric (e.g. fid) when the models come from checkpoints")
    table_name = table or kind
    results = ResultsCSV(out_csv, COLUMNS, write=distributed.is_main())
    done = results.keys()
    scorer, new = None, 0
    seeds = list(range(num))
    scored_by = scorer_identity(metric, inception)     # another detector or reference: other numbers, other cells
    if ref_stats:
        scored_by["ref"] = str(ref_stats)
    for src in sources:
        ckpt = src["checkpoint"]
        snap_meta = checkpoint.load(ckpt, checkpoint.SNAPSHOT_FORMAT)
        cfg = snap_meta["config"]
        sampler = src["sampler"] or None
        for v in values:
            key = cell_key({"ckpt": ckpt, "kind": kind, "value": v, "metric": metric, "num": num, "sampler": sampler,
                            "rule": quant_rule if kind == "quant" else None, **scored_by})
            if key in done:
                continue
            if scorer is None:
                scorer = Scorer(metric, ref_stats, reference_dataset(metric, cfg), inception=inception, device=device)
            qinfo = {}

            def transform(net, bits=v):
                tensors, count, _ = quantize_model(net, bits, quant_rule, top_resolution(snap_meta))
                qinfo.update(quant_bits=bits, quant_rule=quant_rule, quantised_tensors=tensors, quantised_params=count)
                return net

            res = score_snapshot(scorer, ckpt, seeds, v if kind == "steps" else None, device,
                                 v if kind == "alpha" else 0.0, progress, transform if kind == "quant" else None,
                                 sampler)
            res.update(qinfo)
            results.append(row_from(res, key, table_name, cfg, parse_knobs(src["paper_knobs"]), int(src["N"]),
                                    src["train_wall_s"], src["variant"]))
            done.add(key)
            new += 1
            label = {"alpha": f"alpha={v:g}", "quant": f"{v} bits ({qinfo.get('quantised_params', 0)} params)",
                     "steps": f"T={v} (NFE {res['nfe']})"}[kind]
            log(f"{res['method']} {src['knobs']} (paper {src['paper_knobs']}) seed {int(src['seed'])} {label}: "
                f"{metric} = {res['value']:.3f}")
    return new


def load_robustness(csv_path, kind, table=None):
    """A stress CSV's rows of `kind` (and of `table` when given: a folder may also hold an older run's rows
    made by another table on other models, which must not be rendered with this one)."""
    import pandas as pd

    df = load_results(csv_path, table)
    df = df[df[STRESS[kind]["column"]].notna()] if kind == "quant" else df
    if df.empty:
        raise UserError(f"{csv_path} has no {kind} rows")
    df[STRESS[kind]["column"]] = pd.to_numeric(df[STRESS[kind]["column"]], errors="coerce")
    return df
