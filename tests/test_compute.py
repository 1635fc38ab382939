"""Opt-in speed modes (compute.*): each follows the float32 loss trajectory within a stated
tolerance over a short run, and is recorded in the config; float32 with TF32 off is the default."""
import numpy as np
import pytest
import torch

from pfgmbench import compute
from pfgmbench.config import resolve
from pfgmbench.train import Trainer

SHORT = ["train.lr_rampup_kimg=0.1", "train.batch=64"]


def losses(preset, mode=None, steps=25):
    sets = SHORT + ([f"compute.{mode}=true"] if mode else [])
    torch.manual_seed(0)
    tr = Trainer(resolve(preset, sets=sets))
    return np.array([tr.step() for _ in range(steps)])


# (mode, preset, tolerance on the mean relative deviation of the per-step loss from float32)
MODES = [("tf32", "toy-moons", 0.0),          # no TF32 on a CPU: bitwise float32
         ("fused_adam", "toy-moons", 1e-4),
         ("bf16", "toy-moons", 0.03),
         ("bf16", "digits-tiny", 0.03),
         ("channels_last", "digits-tiny", 1e-4),
         ("compile", "toy-moons", 1e-4)]


@pytest.mark.parametrize("mode,preset,tol", MODES)
def test_speed_mode_follows_the_float32_loss_trajectory(mode, preset, tol):
    base, fast = losses(preset), losses(preset, mode)
    rel = np.abs(fast - base) / np.abs(base)
    assert rel.mean() <= tol and rel.max() <= max(3 * tol, 1e-12), (mode, rel)


def test_modes_are_recorded_and_float32_is_the_default():
    cfg = resolve("cifar10-ncsnpp")
    assert compute.label(cfg) == "fp32" and not any(compute.settings(cfg).values())
    cfg = resolve("cifar10-ncsnpp", sets=["compute.tf32=true", "compute.bf16=true"])
    assert compute.label(cfg) == "tf32+bf16"
    compute.set_matmul_precision(resolve("digits-tiny"))
    assert torch.backends.cuda.matmul.fp32_precision == "ieee" and torch.backends.cudnn.conv.fp32_precision == "ieee"
    compute.set_matmul_precision(cfg)
    assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    compute.set_matmul_precision(resolve("digits-tiny"))


def test_gpu_check_script_runs_end_to_end_on_a_cpu(tmp_path):
    """experiments/gpu-check.sh --device cpu --tiny: the GPU session's script, rehearsed (two modes)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    p = subprocess.run(["bash", str(root / "experiments" / "gpu-check.sh"), "--device", "cpu", "--tiny", "--no-tests",
                        "--modes", "fp32,bf16", "--repeats", "1", "--out", str(tmp_path / "gpu")],
                       capture_output=True, text=True, cwd=root, timeout=900, env={**__import__("os").environ,
                                                                                      "PY": sys.executable})
    assert p.returncode == 0, p.stderr[-2000:]
    md = (tmp_path / "gpu" / "gpu-check.md").read_text()
    assert "| fp32 |" in md and "| bf16 |" in md and "deviation 0.00e+00" in md
    import pandas as pd

    df = pd.read_csv(tmp_path / "gpu" / "gpu-check.csv")
    assert set(df["mode"]) == {"fp32", "bf16"} and (df["train_images_per_s"] > 0).all()
