"""torch.distributed on CPU (gloo), launched by torchrun: results do not depend on the ranks."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pfgmbench import checkpoint

SMALL = ["--preset", "digits", "--D", "128", "--quiet", "--set", "net.model_channels=16", "--set", "net.num_blocks=1",
         "--set", "net.dropout=0.0", "--set", "train.batch=64", "--set", "train.checkpoint_kimg=0.256",
         "--set", "train.snapshot_kimg=0.256"]


def _run(args, nproc=1, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if nproc == 1:
        cmd = [sys.executable, "-m", "pfgmbench", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "pfgmbench", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def _state(run):
    return torch.load(run / checkpoint.STATE_NAME, weights_only=True)


def _losses(run):
    return [json.loads(x)["loss"] for x in (run / "stats.jsonl").read_text().splitlines()]


def _close(a, b):
    return all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    _run(["train", *SMALL, "--kimg", "0.512", "--out", d / "one"])
    _run(["train", *SMALL, "--kimg", "0.512", "--out", d / "two"], nproc=2)
    _run(["train", *SMALL, "--kimg", "0.256", "--out", d / "mixed"], nproc=2)
    _run(["train", *SMALL, "--kimg", "0.512", "--out", d / "mixed", "--resume", "auto"])
    return d


def test_two_processes_match_one_process(runs):
    one, two = _state(runs / "one"), _state(runs / "two")
    assert one["images"] == two["images"] == 512
    assert _close(one["ema"], two["ema"]) and _close(one["net"], two["net"])
    assert np.allclose(_losses(runs / "one"), _losses(runs / "two"), rtol=1e-4)


def test_two_process_checkpoint_resumes_in_one_process(runs):
    assert _close(_state(runs / "one")["ema"], _state(runs / "mixed")["ema"])


def test_sampling_with_two_ranks_writes_the_images_of_one(runs, tmp_path):
    snap = checkpoint.latest_snapshot(runs / "one")
    _run(["sample", "--ckpt", snap, "--seeds", "0-9", "--steps", "6", "--out", tmp_path / "a"])
    _run(["sample", "--ckpt", snap, "--seeds", "0-9", "--steps", "6", "--out", tmp_path / "b"], nproc=2)
    fa = sorted(p.name for p in (tmp_path / "a").glob("0*.png"))
    assert fa == sorted(p.name for p in (tmp_path / "b").glob("0*.png")) and len(fa) == 10
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in fa)
    _run(["sample", "--ckpt", snap, "--seeds", "0-9", "--steps", "6", "--out", tmp_path / "c", "--format", "npz"],
         nproc=2)
    _run(["sample", "--ckpt", snap, "--seeds", "0-9", "--steps", "6", "--out", tmp_path / "d", "--format", "npz"])
    a, b = np.load(tmp_path / "c" / "samples.npz"), np.load(tmp_path / "d" / "samples.npz")
    assert np.array_equal(a["samples"], b["samples"]) and a["seeds"].tolist() == list(range(10))


def test_scoring_is_reduced_across_ranks(runs):
    snap = checkpoint.latest_snapshot(runs / "one")
    args = ["eval", "--ckpt", snap, "--metric", "fd-digits", "--num-samples", "40", "--steps", "4", "--json"]
    one = json.loads(_run(args).stdout)
    two = json.loads(_run(args, nproc=2).stdout.strip().splitlines()[-1])
    # --nproc relaunches under torchrun with the torchrun-safe spelling of --num / --run
    via = json.loads(_run(["eval", "--run", snap.parent, "--metric", "fd-digits", "--num", "40", "--steps", "4",
                           "--json", "--nproc", "2"]).stdout.strip().splitlines()[-1])
    assert one["n"] == two["n"] == via["n"] == 40
    assert one["value"] == pytest.approx(two["value"], rel=1e-9) == via["value"]


def test_feature_statistics_from_sums_match_direct():
    from pfgmbench.distributed import reduce_feature_stats
    from pfgmbench.metrics.frechet import feature_stats

    f = np.random.default_rng(0).normal(size=(300, 7))
    mu, sigma, n = reduce_feature_stats(f)
    mu2, sigma2 = feature_stats(f)
    assert n == 300 and np.allclose(mu, mu2) and np.allclose(sigma, sigma2)


def _torchrun(args, nproc=2, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "pfgmbench", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


KILLED = ("terminate called", "SIGABRT", "Signal 6", "exitcode: -")


def test_two_process_eval_exits_cleanly_every_time(runs):
    """Ranks used to abort at exit about half the time (process group never torn down)."""
    snap = checkpoint.latest_snapshot(runs / "one")
    args = ["eval", "--ckpt", snap, "--metric", "fd-digits", "--num-samples", "16", "--steps", "3", "--json"]
    for attempt in range(5):
        p = _torchrun(args)
        assert p.returncode == 0, (attempt, p.stderr[-2000:])
        assert not any(k in p.stderr for k in KILLED), (attempt, p.stderr[-2000:])
        assert len(p.stdout.strip().splitlines()) == 1     # the result, printed once (rank 0)


def test_two_process_sweep_writes_each_row_once_and_errors_exit_without_a_signal(tmp_path):
    args = ["sweep-d", "--preset", "digits-tiny", "--values", "inf", "--kimg", "0.128", "--set",
            "train.snapshot_kimg=0.128", "--set", "train.checkpoint_kimg=0.128", "--num-samples", "16", "--steps", "3",
            "--runs-dir", tmp_path / "runs", "--out", tmp_path / "s.csv", "--quiet"]
    p = _torchrun(args)
    assert p.returncode == 0 and not any(k in p.stderr for k in KILLED), p.stderr[-2000:]
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "s.csv")) == 1        # rank 0 alone writes
    p = _torchrun(["eval", "--ckpt", tmp_path / "missing.pt", "--metric", "fd-digits"])
    assert p.returncode != 0 and "checkpoint not found" in p.stderr
    assert not any(k in p.stderr for k in KILLED), p.stderr[-2000:]
