"""Sweeps: one trained model per (D, seed, cond), every chosen snapshot scored, one CSV row per
(D, seed, checkpoint, metric). Cells are keyed by a hash of their resolved config, so a sweep
killed at any moment and started again does only the missing work.
"""
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from pfgmbench import checkpoint, compute, distributed
from pfgmbench.config import parse_D, resolve
from pfgmbench.errors import UserError
from pfgmbench.paper_numbers import D_label
from pfgmbench.provenance import git_commit, now
from pfgmbench.results_csv import ResultsCSV, cell_key

COLUMNS = ["cell", "table", "preset", "scale", "method", "cond", "D_paper", "D", "N", "seed", "kimg",
           "checkpoint", "metric", "value", "n", "floor", "floor_n", "steps", "nfe", "alpha", "quant_bits",
           "quant_rule", "quantised_tensors", "quantised_params", "out_of_range", "far_out", "mode", "reference", "detector", "compute", "train_wall_s", "eval_s", "commit", "timestamp"]

DATA_N = {"digits": 64, "cifar10": 3072, "gmm1000": 1000}


@dataclass
class SweepSpec:
    preset: str
    D_values: list                 # paper-scale D values (floats, inf allowed)
    seeds: list = field(default_factory=lambda: [0])
    cond: bool = False
    metric: str = "fd-digits"
    num: int = 1000
    steps: int = None
    kimg: float = None
    score_from_kimg: float = 0.0   # score snapshots at or after this point (PFGM++: 100 Mimg on CIFAR)
    absolute: bool = False         # D_values are used as given, not mapped by N / paper_N
    table: str = "sweep"
    sets: tuple = ()
    ref_stats: str = None
    ref_dataset: str = None
    inception: str = None
    mode: str = "legacy_tensorflow"
    runs_dir: str = "runs"
    device: str = "auto"


def data_N(cfg):
    name = cfg["data"]["name"]
    if name in DATA_N:
        return DATA_N[name]
    from pfgmbench.data import load_dataset

    return load_dataset(cfg["data"]).N


def proxy_D(D_paper, N, paper_N, absolute=False):
    """D scaled so that D/N matches the paper: D_proxy = D_paper * N / paper_N (inf stays inf)."""
    if absolute or math.isinf(D_paper):
        return D_paper
    D = D_paper * N / paper_N
    if D < 1:
        raise UserError(f"paper D={D_paper:g} maps to D={D:.3g} < 1 at N={N} (D/N kept as in the paper's "
                        f"N={paper_N}); drop it or pass --absolute")
    return round(D, 4)


def parse_D_list(text):
    try:
        vals = [parse_D(v) for v in str(text).split(",") if v.strip()]
    except UserError as e:
        raise UserError(f"--values: {e}") from None
    if not vals:
        raise UserError("--values needs at least one D, e.g. 64,128,2048,inf")
    return vals


def cells(spec):
    """(cfg, D_paper, seed) for every model the sweep trains."""
    base = resolve(spec.preset, sets=spec.sets)
    N = data_N(base)
    for D_paper in spec.D_values:
        D = proxy_D(D_paper, N, base["paper_N"], spec.absolute or base["scale"] == "paper")
        for seed in spec.seeds:
            cfg = resolve(spec.preset, D=D, sets=spec.sets, kimg=spec.kimg, seed=seed, cond=spec.cond or None)
            yield cfg, D_paper, seed, N


def run_folder(spec, cfg):
    D = cfg["physics"]["D"]
    tag = f"D{'inf' if math.isinf(D) else f'{D:g}'}-s{cfg['train']['seed']}{'-cond' if cfg['data']['cond'] else ''}"
    # The model's identity: everything that changes training (not sampling, labels or D mapping).
    train_key = cell_key({k: v for k, v in cfg.items() if k not in ("sample", "description", "paper_N")} | {"train": {
        k: v for k, v in cfg["train"].items() if k not in ("device", "checkpoint_kimg")}})
    return Path(spec.runs_dir) / cfg["preset"] / f"{tag}-{train_key[:10]}"


def run_sweep(spec, csv_path, progress=True, log=print, extra_cells=None):
    """Train and score every cell; returns the number of new rows."""
    from pfgmbench.evaluate import Scorer, device_for, score_snapshot
    from pfgmbench.train import train

    todo = list(cells(spec))          # validates every cell before anything is written
    table = ResultsCSV(csv_path, COLUMNS, write=distributed.is_main())
    done = table.keys()
    scorer, new = None, 0
    dev = str(device_for(spec.device))
    seeds = list(range(spec.num))
    for i, (cfg, D_paper, seed, N) in enumerate(todo):
        folder = run_folder(spec, cfg)
        label = f"[{i + 1}/{len(todo)}] D={D_label(cfg['physics']['D'])} (paper {D_label(D_paper)}) seed {seed}" + (
            " cond" if cfg["data"]["cond"] else "")
        log(f"{label}: {folder}")
        t0 = time.time()
        train(cfg, folder, resume=True, progress=progress)
        train_wall = _train_wall(folder) or round(time.time() - t0, 1)
        snaps = [(k, p) for k, p in checkpoint.list_snapshots(folder) if k >= spec.score_from_kimg - 1e-9]
        for kimg, snap in snaps:
            key = cell_key({"run": folder.name, "kimg": kimg, "metric": spec.metric, "num": spec.num,
                            "steps": spec.steps or cfg["sample"]["steps"], "table": spec.table,
                            "ref": spec.ref_stats or spec.ref_dataset})
            if key in done:
                continue
            if scorer is None:
                scorer = Scorer(spec.metric, spec.ref_stats, spec.ref_dataset or _default_ref(spec, cfg),
                                spec.mode, spec.inception, device=dev)
            res = score_snapshot(scorer, snap, seeds, spec.steps, dev, progress=progress)
            table.append(row_from(res, key, spec.table, cfg, D_paper, N, train_wall))
            done.add(key)
            new += 1
            log(f"    kimg {kimg}: {spec.metric} = {res['value']:.3f} (n={res['n']})")
    return new


def row_from(res, key, table, cfg, D_paper, N, train_wall):
    D = cfg["physics"]["D"]
    return {
        "cell": key, "table": table, "preset": cfg["preset"], "scale": cfg["scale"],
        "method": "EDM" if math.isinf(D) else "PFGM++", "cond": int(bool(cfg["data"]["cond"])),
        "D_paper": D_paper, "D": D, "N": N, "seed": cfg["train"]["seed"], "kimg": res["kimg"],
        "checkpoint": res["checkpoint"], "metric": res["metric"], "value": res["value"], "n": res["n"],
        "floor": res.get("floor"), "floor_n": res.get("floor_n"), "steps": res["steps"], "nfe": res["nfe"],
        "alpha": res.get("alpha", 0.0), "quant_bits": res.get("quant_bits", ""),
        "quant_rule": res.get("quant_rule", ""), "quantised_tensors": res.get("quantised_tensors", ""),
        "quantised_params": res.get("quantised_params", ""),
        "out_of_range": res.get("out_of_range"), "far_out": res.get("far_out"), "mode": res.get("mode", ""),
        "reference": res.get("ref_stats") or res.get("ref_dataset") or "digits-train",
        "detector": res.get("detector", "digits-cnn" if res["metric"].endswith("digits") else ""),
        "compute": compute.label(cfg), "train_wall_s": train_wall, "eval_s": res.get("total_s"), "commit": git_commit(), "timestamp": now(),
    }


def _default_ref(spec, cfg):
    if spec.metric in ("fd-digits", "is-digits"):
        return None
    name = cfg["data"]["name"]
    return name if name != "imagefolder" else None


def _train_wall(folder):
    path = Path(folder) / "stats.jsonl"
    if not path.exists():
        return None
    walls = [json.loads(x)["wall_s"] for x in path.read_text().splitlines() if x.strip()]
    if not walls:
        return None
    # wall_s restarts at each resume: add up the last value of every segment
    total = sum(a for a, b in zip(walls, walls[1:]) if b < a) + walls[-1]
    return round(total, 1)
