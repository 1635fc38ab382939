"""What a run folder holds, for `pfgmbench runs` / `pfgmbench show` and the loss-curve plot.

A run folder (written by `pfgmbench train`): config.yaml, stats.jsonl, log.txt, loss.png,
provenance.jsonl (one line per start: commit, time, the kimg it started from), training-state.pt
and network-snapshot-*.pt.
"""
from pathlib import Path

import yaml

from pfgmbench import checkpoint
from pfgmbench.atomic import atomic_path, read_jsonl
from pfgmbench.errors import UserError


def _stats(run):
    return read_jsonl(Path(run) / "stats.jsonl")


def train_wall_s(run):
    """Training wall time of a run summed over its resumes (stats.jsonl restarts wall_s at each)."""
    walls = [r["wall_s"] for r in _stats(run)]
    if not walls:
        return None
    return round(sum(a for a, b in zip(walls, walls[1:]) if b < a) + walls[-1], 1)


def plot_loss(run):
    """loss.png: the training loss against kimg (log scale), refreshed with each snapshot."""
    stats = _stats(run)
    if not stats:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot([s["kimg"] for s in stats], [s["loss"] for s in stats], lw=1)
    ax.set_xlabel("kimg")
    ax.set_ylabel("training loss")
    if min(s["loss"] for s in stats) > 0:
        ax.set_yscale("log")
    ax.set_title(Path(run).name, fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(run) / "loss.png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def is_run(path):
    path = Path(path)
    return path.is_dir() and (path / "config.yaml").exists()


def describe(run, full=False):
    """One run as a dict: preset, family, knobs, kimg done of planned, last loss, snapshots, commit."""
    from pfgmbench.physics import family_class

    run = Path(run)
    if not is_run(run):
        raise UserError(f"{run} is not a run folder (no config.yaml); `pfgmbench runs` lists them")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    stats = _stats(run)
    snaps = checkpoint.list_snapshots(run)
    prov = read_jsonl(run / "provenance.jsonl")
    family = cfg["physics"].get("family", "pfgmpp")
    knobs = {k: cfg["physics"][k] for k in family_class(family).knob_names}
    planned = float(cfg["train"]["kimg"])
    done = stats[-1]["kimg"] if stats else 0.0
    out = {"run": str(run), "preset": cfg.get("preset"), "family": family, **knobs,
           "cond": bool(cfg["data"].get("cond")), "seed": cfg["train"]["seed"], "kimg_done": done,
           "kimg_planned": planned, "status": "finished" if done >= planned - 1e-9 else "partial",
           "last_loss": stats[-1]["loss"] if stats else None, "snapshots": len(snaps),
           "latest_snapshot": str(snaps[-1][1]) if snaps else None,
           "commit": prov[-1]["commit"] if prov else None}
    if full:
        out.update(config=cfg, snapshot_kimg=[k for k, _ in snaps], starts=prov,
                   train_wall_s=train_wall_s(run) or 0.0)
    return out


def list_runs(folder):
    """Every run folder under `folder` (itself included), sorted by path."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder} does not exist; pass the folder that holds your runs (default: runs)")
    found = [folder] if is_run(folder) else []
    found += sorted(p.parent for p in folder.rglob("config.yaml") if p.parent != folder)
    return [describe(p) for p in found]
