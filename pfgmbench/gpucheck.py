"""`pfgmbench gpu-check`: the measurements a GPU session makes, prepared to run in one go.

For cifar10-ncsnpp on synthetic CIFAR-shaped data (no download), in float32 and in each opt-in speed
mode, under torchrun with one process: training images/s, sampling images/s at NFE 35, peak memory
and the projected device-days for the preset's full 200 Mimg; then a tiny model's loss trajectory
on the device against the same run on the CPU (training noise comes from one CPU generator, so the
two see the same draws). Writes gpu-check.csv and gpu-check.md. `--tiny` shrinks the network and
batches so that the whole check runs on a CPU in about a minute (what CI runs).
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pfgmbench.atomic import write_text
from pfgmbench.errors import UserError

PRESET = "cifar10-ncsnpp"
BASE = ["data.name=synthetic"]
TINY = ["net.model_channels=16", "net.channel_mult=[1,2]", "net.num_blocks=1", "net.attn_resolutions=[16]",
        "train.batch=8", "sample.batch=4"]
MODES = [("fp32", []), ("tf32", ["compute.tf32=true"]), ("bf16", ["compute.bf16=true"]),
         ("channels_last", ["compute.channels_last=true"]), ("fused_adam", ["compute.fused_adam=true"]),
         ("compile", ["compute.compile=true"]),
         ("tf32+bf16+channels_last+fused_adam", ["compute.tf32=true", "compute.bf16=true",
                                                 "compute.channels_last=true", "compute.fused_adam=true"])]
TRAJECTORY_STEPS = 20
TRAJECTORY_TOL = 1e-3        # mean relative deviation of the per-step loss, float32, device vs CPU


def _bench(device, sets, repeats, timeout):
    """One `pfgmbench bench` under torchrun (one process), in a fresh process per mode."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "pfgmbench",
           "bench", "--preset", PRESET, "--device", device, "--skip-eval", "--json", "--repeats", str(repeats),
           *[a for s in sets for a in ("--set", s)]]
    t = time.time()
    try:     # one mode failing (a hang, a crash, odd output) is a row of the report, not the end of the check
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout} s", "wall_s": round(time.time() - t, 1)}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1][:300], "wall_s": round(time.time() - t, 1)}
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"unreadable output: {p.stdout.strip()[-200:]!r}", "wall_s": round(time.time() - t, 1)}
    res["wall_s"] = round(time.time() - t, 1)
    return res


def loss_trajectory(device, sets, steps=TRAJECTORY_STEPS):
    from pfgmbench.config import resolve
    from pfgmbench.train import Trainer

    torch.manual_seed(0)
    tr = Trainer(resolve(PRESET, sets=[*BASE, *TINY, *sets, f"train.device={device}", "net.dropout=0.0",
                                       "train.augment_p=0.0"]))
    return np.array([tr.step() for _ in range(steps)])


def run_check(device="cuda", tiny=False, out="results/gpu", repeats=5, timeout=300, log=print, modes=None):
    from pfgmbench.distributed import device as check_device

    dev = check_device(device)
    known = [m for m, _ in MODES]
    unknown = [m for m in (modes or ()) if m not in known]
    if unknown:
        raise UserError(f"--modes: unknown mode {unknown[0]}; choose from {', '.join(known)}")
    out = Path(out)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    extra = TINY if tiny else []
    rows = []
    for mode, sets in MODES:
        if modes and mode not in modes:
            continue
        log(f"gpu-check: bench {mode} on {name}")
        r = _bench(device, [*BASE, *extra, *sets], 1 if tiny else repeats, timeout)
        rows.append({"mode": mode, "device": name, "tiny": tiny, **r})
    base = next((r for r in rows if r["mode"] == "fp32" and "error" not in r), None)
    for r in rows:
        if base and "error" not in r:
            r["train_speedup_vs_fp32"] = round(r["train_images_per_s"] / base["train_images_per_s"], 3)
            r["sample_speedup_vs_fp32"] = round(r["sample_images_per_s"] / base["sample_images_per_s"], 3)
    log("gpu-check: loss trajectory, device vs CPU")
    dev_losses = loss_trajectory(device, [])
    cpu_losses = loss_trajectory("cpu", [])
    deviation = float(np.mean(np.abs(dev_losses - cpu_losses) / np.abs(cpu_losses)))
    trajectory = {"steps": TRAJECTORY_STEPS, "mean_rel_deviation": deviation, "tolerance": TRAJECTORY_TOL,
                  "ok": deviation <= TRAJECTORY_TOL}
    import pandas as pd

    from pfgmbench.provenance import git_commit, now

    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df["commit"], df["timestamp"] = git_commit(), now()
    write_text(out / "gpu-check.csv", df.to_csv(index=False))
    write_text(out / "gpu-check.md", _markdown(rows, trajectory, name, tiny))
    return {"device": name, "modes": rows, "trajectory": trajectory}


def _markdown(rows, trajectory, name, tiny):
    scope = ("a tiny network (--tiny: 16 channels, 1 block; batch 8): checks that every path runs, not the "
             "paper preset's speed" if tiny else "the paper preset cifar10-ncsnpp (56.4 M parameters)")
    lines = [f"## GPU check: {name}", "",
             f"Synthetic CIFAR-10-shaped data (3x32x32; no download), {scope}; one process under torchrun. "
             "Projected device-days: the preset's 200 Mimg at this training rate on one device.", "",
             "| mode | train img/s | sample img/s (NFE 35) | peak memory (MB) | projected device-days (200 Mimg) | "
             "train speed-up vs fp32 | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['mode']} | – | – | – | – | – | failed: {r['error']} |")
            continue
        lines.append(f"| {r['mode']} | {r['train_images_per_s']} | {r['sample_images_per_s']} | {r['peak_memory_mb']} | "
                     f"{r['projected_device_days']} | {r.get('train_speedup_vs_fp32', '–')} | |")
    t = trajectory
    lines += ["", f"Loss trajectory over {t['steps']} steps (float32, TF32 off), device vs CPU: mean relative "
              f"deviation {t['mean_rel_deviation']:.2e} (tolerance {t['tolerance']:g}): "
              f"{'ok' if t['ok'] else 'FAILED'}.", ""]
    return "\n".join(lines)


def require_ok(summary):
    if not summary["trajectory"]["ok"]:
        raise UserError(f"the device's float32 loss trajectory differs from the CPU's by "
                        f"{summary['trajectory']['mean_rel_deviation']:.2e} (> {TRAJECTORY_TOL:g})")
    bad = [r["mode"] for r in summary["modes"] if "error" in r]
    if bad:
        raise UserError(f"gpu-check: mode(s) {', '.join(bad)} failed; see gpu-check.md")

