"""Sweeps: one trained model per (row, variant, seed), every chosen snapshot scored, one CSV row per
(model, checkpoint, metric). A row is a model family with the paper's knobs (tables/specs.py);
a variant is any other config axis (`--axis train.lr=1e-3,2e-3`). Cells are keyed by a hash of
their resolved config, so a sweep killed at any moment and started again does only what is missing.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path

from pfgmbench import checkpoint, distributed
from pfgmbench import run_folder as run_folder_info
from pfgmbench.config import resolve
from pfgmbench.data import data_N
from pfgmbench.errors import UserError
from pfgmbench.physics import family_class
from pfgmbench.progress import log as default_log
from pfgmbench.tables.results import (
    COLUMNS,
    ResultsCSV,
    cell_key,
    format_knobs,
    row_from,
)


@dataclass
class SweepSpec:
    preset: str
    rows: list                         # tables.specs.Row: family + the paper's knobs + cond + sampler
    seeds: list = field(default_factory=lambda: [0])
    metric: str = "fd-digits"
    num: int = 1000
    steps: int = None
    kimg: float = None
    score_from_kimg: float = 0.0       # score snapshots at or after this point (PFGM++: 100 Mimg on CIFAR)
    absolute: bool = False             # knobs are used as given, not mapped to the proxy's N
    table: str = "sweep"
    sets: tuple = ()
    variants: list = field(default_factory=lambda: [("", ())])   # (label, --set overrides) per axis value
    ref_stats: str = None
    ref_dataset: str = None
    inception: str = None
    mode: str = "legacy_tensorflow"
    runs_dir: str = "runs"
    device: str = "auto"
    paper_N: int = None                # the paper data set's N (default: the preset's paper_N)


def model_knobs(row, N, paper_N, absolute):
    """The knobs a row's model trains with: the paper's, mapped to this N by its family."""
    if absolute:
        return row.knob_dict
    return family_class(row.family).proxy_knobs(row.knob_dict, N, paper_N)


def _not_physics(sets):
    """The --set overrides that hold for every row: physics keys may belong to one row's family only
    (each cell resolves them with its own family)."""
    return tuple(s for s in sets if not s.startswith("physics."))


def cells(spec):
    """(cfg, row, variant label, seed, N) for every model the sweep trains; validates them all first."""
    base = resolve(spec.preset, sets=_not_physics(spec.sets))
    N = data_N(base["data"])
    paper_N = spec.paper_N or base["paper_N"]
    absolute = spec.absolute or base["scale"] == "paper"
    out = []
    for row in spec.rows:
        knobs = model_knobs(row, N, paper_N, absolute)
        for label, sets in spec.variants:
            for seed in spec.seeds:
                cfg = resolve(spec.preset, family=row.family, physics=knobs, sets=(*spec.sets, *sets),
                              kimg=spec.kimg, seed=seed, cond=row.cond or None)
                out.append((cfg, row, label, seed, N))
    return out


def run_folder(spec, cfg):
    """runs/<preset>/<family>-<knobs>-s<seed>[-cond]-<hash of everything that changes training>."""
    names = family_class(cfg["physics"]["family"]).knob_names
    knobs = "".join(f"-{k}{float(cfg['physics'][k]):g}" for k in sorted(names))
    tag = f"{cfg['physics']['family']}{knobs}-s{cfg['train']['seed']}{'-cond' if cfg['data']['cond'] else ''}"
    train_key = cell_key({k: v for k, v in cfg.items() if k not in ("sample", "description", "paper_N")} | {"train": {
        k: v for k, v in cfg["train"].items() if k not in ("device", "checkpoint_kimg")}})
    return Path(spec.runs_dir) / cfg["preset"] / f"{tag}-{train_key[:10]}"


def run_sweep(spec, csv_path, progress=True, log=default_log):
    """Train and score every cell; returns the number of new rows."""
    from pfgmbench.evaluate import Scorer, device_for, reference_dataset, score_snapshot
    from pfgmbench.train import train

    todo = cells(spec)          # validates every cell before anything is written
    dev = str(device_for(spec.device))
    first = todo[0][0]          # the scorer too (a missing detector or reference fails before any training)
    scorer = Scorer(spec.metric, spec.ref_stats, spec.ref_dataset or reference_dataset(spec.metric, first),
                    spec.mode, spec.inception, device=dev)
    table = ResultsCSV(csv_path, COLUMNS, write=distributed.is_main())
    done = table.keys()
    new = 0
    seeds = list(range(spec.num))
    for i, (cfg, row, variant, seed, N) in enumerate(todo):
        folder = run_folder(spec, cfg)
        knobs = {k: cfg["physics"][k] for k in family_class(row.family).knob_names}
        label = (f"[{i + 1}/{len(todo)}] {row.family} {format_knobs(knobs)} (paper {format_knobs(row.knob_dict)}) "
                 f"seed {seed}{' cond' if row.cond else ''}{' ' + variant if variant else ''}")
        log(f"{label}: {folder}")
        t0 = time.time()
        train(cfg, folder, resume=True, progress=progress)
        train_wall = run_folder_info.train_wall_s(folder) or round(time.time() - t0, 1)
        snaps = [(k, p) for k, p in checkpoint.list_snapshots(folder) if k >= spec.score_from_kimg - 1e-9]
        steps = row.steps or spec.steps
        scored_by = {"metric": spec.metric, "num": spec.num, "steps": steps or cfg["sample"]["steps"],
                     "sampler": row.sampler, "table": spec.table, "ref": spec.ref_stats or spec.ref_dataset}
        if "detector_sha256" in scorer.info:     # another detector or FID mode: other numbers
            scored_by.update(detector=scorer.info["detector_sha256"], mode=scorer.info["mode"])
        sample_sets = sorted(s for s in (*spec.sets, *dict(spec.variants)[variant]) if s.startswith("sample."))
        if sample_sets:        # one trained model scored several ways: each its own cell
            scored_by["sample"] = sample_sets
        for kimg, snap in snaps:
            key = cell_key({"run": folder.name, "kimg": kimg, **scored_by})
            if key in done:
                continue
            res = score_snapshot(scorer, snap, seeds, steps, dev, progress=progress, sampler=row.sampler,
                                 sample=cfg["sample"])
            table.append(row_from(res, key, spec.table, cfg, row.knob_dict, N, train_wall, variant))
            done.add(key)
            new += 1
            log(f"    kimg {kimg:g}: {spec.metric} = {res['value']:.3f} (n={res['n']}, NFE {res['nfe']})")
    return new


def default_metric(cfg):
    """fd-digits for the digits, a sample distance for point clouds, FID for images."""
    if cfg["data"]["name"] in ("digits", "digits32"):
        return "fd-digits"
    return "mmd" if cfg["net"]["arch"] == "mlp" else "fid"


def parse_axis(text):
    """'train.lr=1e-3,2e-3' -> [('train.lr=1e-3', ('train.lr=1e-3',)), ...] (one variant per value)."""
    if not text:
        return [("", ())]
    if "=" not in text:
        raise UserError(f"--axis expects KEY=v1,v2,..., got '{text}' (e.g. --axis train.lr=1e-3,2e-3)")
    key, values = text.split("=", 1)
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not vals:
        raise UserError(f"--axis {key}: no values given")
    return [(f"{key}={v}", (f"{key}={v}",)) for v in vals]


def make_spec(preset, rows, seeds, metric=None, num=None, steps=None, kimg=None, score_from_kimg=None,
              absolute=False, sets=(), ref_stats=None, inception=None, runs_dir="runs", device="auto",
              table="sweep", variants=None, paper_N=None, score_last=3):
    """A SweepSpec with the defaults users expect: the preset's metric, 1000 samples (50k at paper
    scale), and the last `score_last` snapshots scored (of the training duration in effect)."""
    base = resolve(preset, sets=_not_physics(sets), kimg=kimg)
    if score_from_kimg is None:
        snap = base["train"]["snapshot_kimg"]
        score_from_kimg = max(0.0, base["train"]["kimg"] - (score_last - 1) * snap - 1e-6)
    return SweepSpec(preset=preset, rows=rows, seeds=list(seeds), metric=metric or default_metric(base),
                     num=num or (50000 if base["scale"] == "paper" else 1000), steps=steps, kimg=kimg,
                     score_from_kimg=score_from_kimg, absolute=absolute, table=table, sets=tuple(sets),
                     variants=variants or [("", ())], ref_stats=ref_stats, inception=inception, runs_dir=runs_dir,
                     device=device, paper_N=paper_N)
