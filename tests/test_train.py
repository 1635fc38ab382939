"""Training: resume gives bitwise the same EMA, divergence stops cleanly, checkpoints load safely."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from pfgmbench import checkpoint
from pfgmbench.config import resolve
from pfgmbench.errors import UserError
from pfgmbench.train import DataOrder, train

TINY = ["train.checkpoint_kimg=0.256", "train.snapshot_kimg=0.512", "net.dropout=0.1"]


def _ema(run):
    return torch.load(run / checkpoint.STATE_NAME, weights_only=True)["ema"]


def _cfg(D=64.0, kimg=1.024):
    return resolve("digits-tiny", D=D, sets=TINY, kimg=kimg)


def test_resume_is_bitwise_equal(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(_cfg(), a, progress=False)
    train(_cfg(), b, progress=False, stop_after_kimg=0.384)
    assert torch.load(b / checkpoint.STATE_NAME, weights_only=True)["images"] == 384
    train(_cfg(), b, resume=True, progress=False)
    ea, eb = _ema(a), _ema(b)
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    # the log has each kimg once, in order
    ka = [json.loads(x)["kimg"] for x in (b / "stats.jsonl").read_text().splitlines()]
    assert ka == sorted(set(ka))


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    args = ["--preset", "digits-tiny", "--D", "64", "--kimg", "1.536", "--quiet", "--resume", "auto",
            *sum((["--set", s] for s in TINY), [])]
    cmd = [sys.executable, "-m", "pfgmbench", "train", *args]
    assert subprocess.run(cmd + ["--out", str(ref)], capture_output=True).returncode == 0
    p = subprocess.Popen(cmd + ["--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (run / checkpoint.STATE_NAME).exists() and time.time() - t0 < 120:
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert subprocess.run(cmd + ["--out", str(run)], capture_output=True).returncode == 0
    ea, eb = _ema(ref), _ema(run)
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    assert not list(run.glob("*.tmp"))


def test_existing_run_needs_resume_and_matching_config(tmp_path):
    train(_cfg(kimg=0.256), tmp_path, progress=False)
    with pytest.raises(UserError, match="--resume auto"):
        train(_cfg(kimg=0.512), tmp_path, progress=False)
    with pytest.raises(UserError, match="physics.D"):
        train(_cfg(D=128.0, kimg=0.512), tmp_path, resume=True, progress=False)
    assert train(_cfg(kimg=0.512), tmp_path, resume=True, progress=False) == pytest.approx(0.512)


def test_folder_with_snapshots_but_no_state_restarts_only_for_the_same_config(tmp_path):
    train(_cfg(kimg=0.512), tmp_path, progress=False)
    (tmp_path / checkpoint.STATE_NAME).unlink()     # as if killed before its first checkpoint
    with pytest.raises(UserError, match="physics.D.*no training-state"):
        train(_cfg(D=128.0, kimg=0.512), tmp_path, resume=True, progress=False)
    assert train(_cfg(kimg=0.512), tmp_path, resume=True, progress=False) == pytest.approx(0.512)
    kimgs = [json.loads(x)["kimg"] for x in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert kimgs == sorted(set(kimgs))        # the first attempt's curve is gone, not drawn twice


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    import pfgmbench.train as tr

    real, calls = tr.family_loss, []

    def poisoned(*a, **k):   # the 7th step's loss is NaN (checkpoints every 4 steps)
        calls.append(1)
        loss = real(*a, **k)
        return loss * float("nan") if len(calls) >= 7 else loss

    monkeypatch.setattr(tr, "family_loss", poisoned)
    with pytest.raises(UserError, match="last good checkpoint"):
        train(_cfg(kimg=1.024), tmp_path, progress=False)
    st = torch.load(tmp_path / checkpoint.STATE_NAME, weights_only=True)
    assert st["images"] == 256 and all(torch.isfinite(v).all() for v in st["ema"].values())
    monkeypatch.setattr(tr, "family_loss", real)
    assert train(_cfg(kimg=1.024), tmp_path, resume=True, progress=False) == pytest.approx(1.024)


def test_data_order_is_a_permutation_per_epoch():
    order = DataOrder(10, seed=3)
    idx = order.indices(0, 30)
    for e in range(3):
        assert sorted(idx[e * 10:(e + 1) * 10].tolist()) == list(range(10))
    assert torch.equal(order.indices(7, 9), idx[7:16])


def test_class_conditional_training_and_sampling(tmp_path):
    cfg = resolve("digits-tiny", D=128.0, sets=TINY, kimg=0.256, cond=True)
    train(cfg, tmp_path, progress=False)
    c, net, snap = checkpoint.load_network(checkpoint.latest_snapshot(tmp_path))
    assert c["data"]["cond"] and net.label_dim == 10
