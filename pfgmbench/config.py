"""Presets (YAML under experiments/) and `--set key=value` overrides, validated in one place.

A config is a plain nested dict with the sections data / net / physics / train / sample.
"""
import copy
import difflib
import math
import os
from pathlib import Path

import yaml

from pfgmbench.errors import UserError
from pfgmbench.physics import family_class

PRESET_DIR = Path(os.environ.get("PFGMBENCH_PRESETS", Path(__file__).resolve().parents[1] / "experiments"))

# Keys every preset gets unless it says otherwise (EDM / PFGM++ defaults, REFERENCE 1 and 3).
DEFAULTS = {
    "description": "",
    "scale": "proxy",
    "paper_N": 3072,          # N of the paper data set whose D values this preset mirrors
    "data": {"name": "digits", "root": None, "cond": False},
    "net": {
        "arch": "songunet", "model_channels": 64, "channel_mult": [1, 2], "channel_mult_emb": 4,
        "num_blocks": 2, "attn_resolutions": [4], "dropout": 0.1, "embedding_type": "positional",
        "channel_mult_noise": 1, "encoder_type": "standard", "decoder_type": "standard",
        "resample_filter": [1, 1], "augment_dim": 0, "label_dropout": 0.0, "hidden": 256, "depth": 4,
    },
    "physics": {"family": "pfgmpp", "D": math.inf, "P_mean": -1.2, "P_std": 1.2, "sigma_data": 0.5},
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
    cfg["physics"] = _merge(family_class(cfg["physics"]["family"]).defaults, cfg["physics"])
    cfg["preset"] = name
    return cfg


def unknown_key(key, cfg):
    """The error for a --set key the config does not have, naming the closest valid keys."""
    keys = flat_keys(cfg)
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
    if not close:   # e.g. 'lr' for 'train.lr': match the last part
        leaf = key.split(".")[-1]
        close = [k for k in keys if k.split(".")[-1] in difflib.get_close_matches(leaf, [x.split(".")[-1] for x in keys],
                                                                                    n=3, cutoff=0.6)][:3]
    hint = f"did you mean {' or '.join(close)}?" if close else "see `pfgmbench presets --keys` for the valid keys"
    return UserError(f"unknown --set key '{key}'; {hint}")


def apply_sets(cfg, sets):
    """Apply `key.sub=value` overrides. Only keys the preset has are accepted."""
    cfg = copy.deepcopy(cfg)
    for item in sets or ():
        if "=" not in item:
            raise UserError(f"--set expects key=value, got '{item}' (e.g. --set train.lr=1e-3)")
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        node = cfg
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise unknown_key(key, cfg)
            node = node[p]
        leaf = parts[-1]
        if leaf not in node or isinstance(node[leaf], dict):
            raise unknown_key(key, cfg)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"--set {key}: cannot parse value '{text}'") from None
        old = node[leaf]
        if isinstance(value, str) and isinstance(old, (int, float)) and not isinstance(old, bool):
            try:      # YAML 1.1 reads 1e-3 (no dot) as a string
                value = float(value)
                value = int(value) if isinstance(old, int) and value.is_integer() else value
            except ValueError:
                pass
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
    family_class(cfg["physics"]["family"]).check_config(cfg)
    t, s = cfg["train"], cfg["sample"]
    for key in ("kimg", "batch", "lr"):
        if not t[key] > 0:
            raise UserError(f"train.{key} must be > 0, got {t[key]}")
    if not s["steps"] >= 2:
        raise UserError(f"sample.steps must be >= 2, got {s['steps']}")
    if not 0 < s["sigma_min"] < s["sigma_max"]:
        raise UserError("sample.sigma_min must be > 0 and below sample.sigma_max")
    if not float(t["snapshot_kimg"]) * 1000 >= 1 or not float(t["checkpoint_kimg"]) * 1000 >= 1:
        raise UserError("train.snapshot_kimg and train.checkpoint_kimg must be at least 0.001 (one image)")
    if not 0 <= t["augment_p"] <= 1:
        raise UserError(f"train.augment_p must be in [0, 1], got {t['augment_p']}")
    if cfg["net"]["arch"] not in ("songunet", "mlp"):
        raise UserError(f"net.arch must be 'songunet' or 'mlp', got '{cfg['net']['arch']}'")
    return cfg


def resolve(preset, D=None, sets=(), family=None, physics=None, **overrides):
    """Preset + --family + --D (or a dict of physics knobs) + --set + named overrides (kimg, seed,
    cond), validated."""
    cfg = load_preset(preset)
    if family is not None:
        cfg["physics"]["family"] = family
        cfg["physics"] = _merge(family_class(family).defaults, cfg["physics"])
    cfg = apply_sets(cfg, sets)
    if family is not None or D is not None:   # configure also refuses --D for a family without D
        cfg = family_class(cfg["physics"]["family"]).configure(cfg, D)
    if D is not None:
        cfg["physics"]["D"] = D
    for k, v in (physics or {}).items():
        if k not in cfg["physics"]:
            raise UserError(f"model family {cfg['physics']['family']} has no knob '{k}'")
        cfg["physics"][k] = v
    for key, section in (("kimg", "train"), ("seed", "train"), ("cond", "data")):
        if overrides.get(key) is not None:
            cfg[section][key] = overrides[key]
    return validate(cfg)


def dump(cfg):
    return yaml.safe_dump(cfg, sort_keys=False)


def describe_presets(with_keys=False):
    """One dict per preset: data set, N, network, model family and knobs, budget, description."""
    from pfgmbench.data import data_N

    rows = []
    for name in list_presets():
        c = load_preset(name)
        net = c["net"]
        try:
            N = data_N(c["data"])
        except UserError:      # an image folder that is not there: its N is whatever its files have
            N = "?"
        family = family_class(c["physics"]["family"])
        patches = f" on {net['patch']}x{net['patch']} patches" if net.get("patch", 1) > 1 else ""
        rows.append({
            "preset": name, "scale": c["scale"], "data": c["data"]["name"], "N": N,
            "network": (f"SongUNet {net['model_channels']}ch x{net['channel_mult']} {net['embedding_type']} "
                        f"{net['encoder_type']}{patches}" if net["arch"] == "songunet"
                        else f"MLP {net['hidden']}x{net['depth']}"),
            "family": family.name, "knobs": " ".join(f"{k}={c['physics'][k]:g}" for k in family.knob_names),
            "budget": f"{c['train']['kimg']:g} kimg, batch {c['train']['batch']}", "description": c["description"],
            **({"keys": flat_keys(c)} if with_keys else {})})
    return rows
