"""Checkpoints: state_dicts + config only, written atomically, read with weights_only=True.

A run folder holds config.yaml, stats.jsonl, training-state.pt (everything needed to resume)
and network-snapshot-KKKKKK.pt files (EMA weights at kimg KKKKKK, for sampling and scoring;
KKKKKK.III when the image count is not a whole kimg, so two snapshots never share a name).
"""
import re
from pathlib import Path

import torch
import yaml

from pfgmbench.atomic import atomic_path
from pfgmbench.errors import UserError
from pfgmbench.model import build_network

STATE_FORMAT = "pfgmbench-training-state-v1"
SNAPSHOT_FORMAT = "pfgmbench-snapshot-v1"
STATE_NAME = "training-state.pt"
SNAPSHOT_RE = re.compile(r"network-snapshot-(\d{6})(?:\.(\d{3}))?\.pt$")


def save(path, obj):
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load(path, expect_format):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}; check the path or train a run first")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"checkpoint {path} is corrupt or not a pfgmbench checkpoint ({type(e).__name__}); "
                        "delete it and resume from an earlier one, or retrain") from None
    if not isinstance(obj, dict) or obj.get("format") != expect_format:
        raise UserError(f"{path} is not a pfgmbench {expect_format.split('-')[1]} file; "
                        "pass a file written by `pfgmbench train`")
    obj["config"] = yaml.safe_load(obj["config"])
    return obj


def snapshot_path(run, images):
    """network-snapshot-KKKKKK.pt at a whole kimg, else network-snapshot-KKKKKK.III.pt (III = images mod 1000)."""
    kimg, rest = divmod(int(images), 1000)
    return Path(run) / (f"network-snapshot-{kimg:06d}.pt" if rest == 0 else f"network-snapshot-{kimg:06d}.{rest:03d}.pt")


def snapshot_kimg(path):
    """The kimg a snapshot file name says (an int at whole kimg), or None for other names."""
    m = SNAPSHOT_RE.search(Path(path).name)
    if not m:
        return None
    return int(m.group(1)) if m.group(2) is None else int(m.group(1)) + int(m.group(2)) / 1000


def list_snapshots(run):
    """Snapshots of a run sorted by kimg: [(kimg, path), ...]."""
    out = [(snapshot_kimg(p), p) for p in Path(run).glob("network-snapshot-*.pt")]
    return sorted((k, p) for k, p in out if k is not None)


def latest_snapshot(run):
    run = Path(run)
    if not run.is_dir():
        raise UserError(f"run folder not found: {run}; train one with `pfgmbench train --out {run}`")
    snaps = list_snapshots(run)
    if not snaps:
        raise UserError(f"no network snapshot in {run}; train longer or pass --ckpt FILE")
    return snaps[-1][1]


def load_network(path, device="cpu"):
    """(config, EMA network in eval mode, snapshot dict) from a snapshot file."""
    snap = load(path, SNAPSHOT_FORMAT)
    cfg = snap["config"]
    net = build_network(cfg, tuple(snap["data_shape"]), snap["num_classes"])
    try:
        net.load_state_dict(snap["ema"])
    except RuntimeError as e:
        first = str(e).split("\n")[0]
        raise UserError(f"snapshot {path} does not match its config's network ({first}); "
                        "it was written by a different version or edited: retrain or use another snapshot") from None
    return cfg, net.to(device).eval().requires_grad_(False), snap
