"""Presets (YAML under experiments/) and `--set key=value` overrides, validated in one place.

A config is a plain nested dict with the sections data / net / physics / train / sample.
"""
import copy
import math
import os
from pathlib import Path

import yaml

from pfgmbench.errors import UserError

PRESET_DIR = Path(os.environ.get("PFGMBENCH_PRESETS", Path(__file__).resolve().parents[1] / "experiments"))

# Keys every preset gets unless it says otherwise (EDM / PFGM++ defaults, REFERENCE 1 and 3).
DEFAULTS = {
    "description": "",
    "scale": "proxy",
    "paper_N": 3072,          # N of the paper data set whose D values this preset mirrors
    "data": {"name": "digits", "root": None, "cond": False, "xflip": False},
    "net": {
        "arch": "songunet", "model_channels": 64, "channel_mult": [1, 2], "channel_mult_emb": 4,
        "num_blocks": 2, "attn_resolutions": [4], "dropout": 0.1, "embedding_type": "positional",
        "channel_mult_noise": 1, "encoder_type": "standard", "decoder_type": "standard",
        "resample_filter": [1, 1], "augment_dim": 0, "label_dropout": 0.0, "hidden": 256, "depth": 4,
    },
    "physics": {"D": math.inf, "P_mean": -1.2, "P_std": 1.2, "sigma_data": 0.5},
    "train": {
        "kimg": 45, "batch": 128, "lr": 2e-3, "lr_rampup_kimg": 2.0, "ema_halflife_kimg": 3.0,
        "ema_rampup_ratio": 0.05, "augment_p": 0.0, "checkpoint_kimg": 5.0, "snapshot_kimg": 15.0,
        "grad_clip": 0.0, "seed": 0, "device": "auto", "batch_gpu": 0,
    },
    "sample": {"steps": 18, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0, "batch": 256},
    # float32 with TF32 off unless a speed mode is asked for (pfgmbench/compute.py)
    "compute": {"tf32": False, "bf16": False, "channels_last": False, "compile": False, "fused_adam": False},
}


def _merge(base, over):
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def list_presets():
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name):
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown preset '{name}'; choose one of: {', '.join(list_presets())} "
                        "(see `pfgmbench presets`)")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    cfg = _merge(DEFAULTS, raw)
    cfg["preset"] = name
    return cfg


def parse_D(value):
    """'inf' (EDM) or a real number >= 1 (REFERENCE 1: Beta(N/2, D/2) needs D > 0; D >= 1 as in PFGM++)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("inf", "infinity", "edm"):
            return math.inf
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"D must be a number >= 1 or 'inf', got '{value}'") from None
    value = float(value)
    if math.isnan(value) or value < 1:
        raise UserError(f"D must be >= 1 or 'inf' (EDM), got {value:g}; PFGM++ needs a positive "
                        "augmented dimension, e.g. --D 128")
    return value


def apply_sets(cfg, sets):
    """Apply `key.sub=value` overrides. Only keys the preset has are accepted."""
    cfg = copy.deepcopy(cfg)
    for item in sets or ():
        if "=" not in item:
            raise UserError(f"--set expects key=value, got '{item}' (e.g. --set train.lr=1e-3)")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = cfg
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise UserError(f"unknown --set key '{key}'; valid keys: {', '.join(flat_keys(cfg))}")
            node = node[p]
        leaf = parts[-1]
        if leaf not in node or isinstance(node[leaf], dict):
            raise UserError(f"unknown --set key '{key}'; valid keys: {', '.join(flat_keys(cfg))}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"--set {key}: cannot parse value '{text}'") from None
        old = node[leaf]
        if isinstance(old, bool) != isinstance(value, bool) or (
                isinstance(old, (int, float)) and not isinstance(old, bool)
                and not isinstance(value, (int, float))) or (
                isinstance(old, list) and not isinstance(value, list)):
            raise UserError(f"--set {key}: expected a value like {old!r}, got {text!r}")
        if isinstance(old, float) and isinstance(value, int):
            value = float(value)
        node[leaf] = value
    return cfg


def flat_keys(cfg, prefix=""):
    keys = []
    for k, v in cfg.items():
        if isinstance(v, dict):
            keys += flat_keys(v, f"{prefix}{k}.")
        else:
            keys.append(prefix + k)
    return keys


def validate(cfg):
    """Check a resolved config; raise UserError naming the first problem."""
    cfg["physics"]["D"] = parse_D(cfg["physics"]["D"])
    t, s = cfg["train"], cfg["sample"]
    for key in ("kimg", "batch", "lr"):
        if not t[key] > 0:
            raise UserError(f"train.{key} must be > 0, got {t[key]}")
    if not s["steps"] >= 2:
        raise UserError(f"sample.steps must be >= 2, got {s['steps']}")
    if not 0 < s["sigma_min"] < s["sigma_max"]:
        raise UserError("sample.sigma_min must be > 0 and below sample.sigma_max")
    if not 0 <= t["augment_p"] <= 1:
        raise UserError(f"train.augment_p must be in [0, 1], got {t['augment_p']}")
    if cfg["net"]["arch"] not in ("songunet", "mlp"):
        raise UserError(f"net.arch must be 'songunet' or 'mlp', got '{cfg['net']['arch']}'")
    return cfg


def resolve(preset, D=None, sets=(), **overrides):
    """Preset + --D + --set + named overrides (kimg, seed, cond), validated."""
    cfg = apply_sets(load_preset(preset), sets)
    if D is not None:
        cfg["physics"]["D"] = D
    for key, section in (("kimg", "train"), ("seed", "train"), ("cond", "data")):
        if overrides.get(key) is not None:
            cfg[section][key] = overrides[key]
    return validate(cfg)


def dump(cfg):
    return yaml.safe_dump(cfg, sort_keys=False)
