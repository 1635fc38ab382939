"""The command line as a user meets it: outputs, determinism, and one-line errors (exit 2)."""
import json

import numpy as np
import pytest
import torch
from conftest import assert_clean_error
from PIL import Image


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import run_cli

    out = tmp_path_factory.mktemp("run") / "r"
    p = run_cli("train", "--preset", "digits-tiny", "--D", "64", "--kimg", "0.512", "--out", out, "--quiet")
    assert p.returncode == 0, p.stderr
    return out


def test_sample_json_pngs_and_batch_independence(cli, run, tmp_path):
    p = cli("sample", "--run", run, "--seeds", "0-9", "--steps", "6", "--out", tmp_path / "a", "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["nfe"] == 11 and res["images"] == 10
    assert sorted(f.name for f in (tmp_path / "a").glob("0*.png")) == [f"{i:06d}.png" for i in range(10)]
    assert (tmp_path / "a-grid.png").exists() and not (tmp_path / "a" / "grid.png").exists()   # beside, not inside
    p = cli("sample", "--run", run, "--seeds", "5,7", "--steps", "6", "--batch", "1", "--out", tmp_path / "b")
    assert p.returncode == 0, p.stderr
    for s in (5, 7):
        a = np.array(Image.open(tmp_path / "a" / f"{s:06d}.png"))
        b = np.array(Image.open(tmp_path / "b" / f"{s:06d}.png"))
        assert np.array_equal(a, b)


def test_sample_npz(cli, run, tmp_path):
    p = cli("sample", "--run", run, "--seeds", "0-3", "--steps", "4", "--out", tmp_path, "--format", "npz")
    assert p.returncode == 0, p.stderr
    z = np.load(tmp_path / "samples.npz")
    assert z["samples"].shape == (4, 1, 8, 8) and z["samples"].dtype == np.uint8
    assert z["seeds"].tolist() == [0, 1, 2, 3]


def test_presets_lists_the_paper_presets(cli):
    p = cli("presets")
    assert p.returncode == 0
    for name in ("digits", "cifar10-ncsnpp", "ffhq64-ddpmpp"):
        assert name in p.stdout


@pytest.mark.parametrize("args,words", [
    (["train", "--preset", "nope", "--out", "{tmp}/x"], ["unknown preset", "pfgmbench presets"]),
    (["train", "--preset", "digits-tiny", "--D", "0", "--out", "{tmp}/x"], ["D must be >= 1"]),
    (["train", "--preset", "digits-tiny", "--D", "-3", "--out", "{tmp}/x"], ["D must be >= 1"]),
    (["train", "--preset", "digits-tiny", "--D", "abc", "--out", "{tmp}/x"], ["D must be"]),
    (["train", "--preset", "digits-tiny", "--set", "train.lrr=1", "--out", "{tmp}/x"], ["unknown --set key", "train.lr"]),
    (["train", "--preset", "digits-tiny", "--set", "train.lr=fast", "--out", "{tmp}/x"], ["train.lr"]),
    (["train", "--preset", "digits-tiny", "--set", "nokey", "--out", "{tmp}/x"], ["key=value"]),
    (["train", "--preset", "digits-tiny", "--set", "data.name=cifar10", "--set", "data.root={tmp}/c",
      "--set", "data.download=false", "--out", "{tmp}/x"], []),
    (["train", "--preset", "ffhq64-ddpmpp", "--set", "data.root={tmp}/ffhq.zip", "--out", "{tmp}/x"],
     ["not found", "data.root"]),
    (["train", "--preset", "toy-moons", "--cond", "--out", "{tmp}/x"], ["labels"]),
    (["sample", "--run", "{tmp}/none", "--out", "{tmp}/s"], ["run folder not found"]),
    (["sample", "--ckpt", "{tmp}/none.pt", "--out", "{tmp}/s"], ["checkpoint not found"]),
])
def test_bad_input_gives_one_clean_line(cli, tmp_path, args, words):
    p = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert_clean_error(p, *words)
    assert not (tmp_path / "x").exists() and not (tmp_path / "s").exists()


def test_cifar10_missing_offline(cli, tmp_path):
    p = cli("train", "--preset", "cifar10-ncsnpp", "--set", f"data.root={tmp_path}/c", "--out", tmp_path / "x",
            env={"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"})
    assert_clean_error(p, "CIFAR-10", str(tmp_path / "c"))
    assert not (tmp_path / "x").exists()


def test_corrupt_and_mismatched_checkpoints(cli, run, tmp_path):
    bad = tmp_path / "network-snapshot-000001.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert_clean_error(cli("sample", "--ckpt", bad, "--out", tmp_path / "s"), "corrupt")
    torch.save({"format": "something-else"}, bad)
    assert_clean_error(cli("sample", "--ckpt", bad, "--out", tmp_path / "s"), "not a pfgmbench")
    snap = torch.load(sorted(run.glob("network-snapshot-*.pt"))[-1], weights_only=True)
    snap["ema"] = {k: v[..., :1] if v.dim() else v for k, v in snap["ema"].items()}
    torch.save(snap, bad)
    assert_clean_error(cli("sample", "--ckpt", bad, "--out", tmp_path / "s"), "does not match")
    truncated = tmp_path / "t.pt"
    truncated.write_bytes(sorted(run.glob("network-snapshot-*.pt"))[-1].read_bytes()[:1000])
    assert_clean_error(cli("sample", "--ckpt", truncated, "--out", tmp_path / "s"), "corrupt")
    assert not (tmp_path / "s").exists()


def test_bad_seeds_and_steps(cli, run, tmp_path):
    assert_clean_error(cli("sample", "--run", run, "--seeds", "9-3", "--out", tmp_path / "s"), "seed")
    assert_clean_error(cli("sample", "--run", run, "--steps", "1", "--out", tmp_path / "s"), "--steps")


def test_quantisation_is_reported_in_the_sample_json_and_the_robustness_csv(cli, run, tmp_path):
    from pfgmbench import checkpoint
    from pfgmbench.quantize import quantize_model

    p = cli("sample", "--run", run, "--seeds", "0-1", "--steps", "4", "--out", tmp_path / "q", "--json",
            "--quant-bits", "5")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    _, net, _ = checkpoint.load_network(checkpoint.latest_snapshot(run))
    want = quantize_model(net, 5, "paper", top_res=8)
    assert (res["quantised_tensors"], res["quantised_params"], res["total_params"]) == want
    assert 0 < res["quantised_params"] < res["total_params"]

    sweep = tmp_path / "sweep.csv"
    from pfgmbench.tables.results import COLUMNS

    snap = checkpoint.latest_snapshot(run)
    row = {c: "" for c in COLUMNS} | {"cell": "x", "table": "table1", "preset": "digits-tiny", "scale": "proxy",
                                       "family": "pfgmpp", "method": "PFGM++", "cond": 0, "paper_knobs": "D=64.0",
                                       "knobs": "D=64.0", "N": 64, "seed": 0,
                                       "kimg": 0.512, "checkpoint": str(snap), "metric": "fd-digits", "value": 1.0,
                                       "n": 10, "steps": 4, "nfe": 7, "train_wall_s": 1.0}
    import csv as _csv

    with open(sweep, "w", newline="") as f:
        w = _csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerow(row)
    p = cli("robustness", "quant", "--values", "6", "--sweep", sweep, "--out", tmp_path / "rq.csv", "--num", "20",
            "--quiet")
    assert p.returncode == 0, p.stderr
    import pandas as pd

    r = pd.read_csv(tmp_path / "rq.csv").iloc[0]
    want6 = quantize_model(checkpoint.load_network(snap)[1], 6, "paper", top_res=8)
    assert (int(r["quantised_tensors"]), int(r["quantised_params"])) == want6[:2]
    assert r["quant_rule"] == "paper" and r["compute"] == "fp32"
