"""A Python API for notebooks: load a run (or an imported checkpoint), sample given seeds (with
alpha / quantisation), score images. The command line calls the same functions.

    from pfgmbench import api
    run = api.load("runs/d128")                       # a run folder, a snapshot file or an imported run
    x = run.sample(range(64), steps=18)               # float64 samples in [-1, 1], one generator per seed
    x6 = run.sample(range(64), quant_bits=6)          # the same seeds from 6-bit weights
    api.score(x, "fd-digits")                         # {'value': ..., 'floor': ..., 'n': 64, ...}
    api.save_grid(x, "grid.png")
"""
from pathlib import Path

import torch

from pfgmbench import checkpoint
from pfgmbench.generate import check_sampler, sample_images
from pfgmbench.images_io import save_grid as _save_grid
from pfgmbench.images_io import to_uint8
from pfgmbench.physics import build_family
from pfgmbench.quantize import quantize_model, top_resolution
from pfgmbench.solvers import mean_nfe


class Run:
    """One snapshot of a trained model: its config, EMA network and family."""

    def __init__(self, path, device="cpu"):
        path = Path(path)
        self.snapshot_path = checkpoint.latest_snapshot(path) if path.is_dir() else path
        self.device = device
        self.cfg, self.net, self.snap = checkpoint.load_network(self.snapshot_path, device)
        self.shape = tuple(self.snap["data_shape"])
        self.family = build_family(self.cfg, self.shape)

    def __repr__(self):
        knobs = " ".join(f"{k}={v:g}" for k, v in self.family.knobs().items())
        return f"Run({self.snapshot_path}, {self.family.label()} {knobs}, kimg {self.snap['kimg']:g})"

    def sample(self, seeds, steps=None, sampler=None, alpha=0.0, quant_bits=None, quant_rule="paper",
               class_label=None, batch=None):
        """Samples for `seeds` as one float64 tensor (n, ...) in data space, and the mean NFE per sample
        over all batches in `self.last_nfe`. Quantisation works on a copy: the loaded network stays as it was."""
        import copy

        seeds = [int(s) for s in seeds]
        net = self.net
        if quant_bits:
            net = copy.deepcopy(self.net)
            quantize_model(net, quant_bits, quant_rule, top_resolution(self.snap))
        sampler = check_sampler(self.family, sampler)
        steps = int(steps or self.cfg["sample"]["steps"])
        out, evals = [], 0.0
        for chunk, x, nfe in sample_images(net, self.cfg, self.shape, self.snap["num_classes"], seeds, steps,
                                           int(batch or self.cfg["sample"]["batch"]), self.device, alpha,
                                           sampler=sampler, class_label=class_label):
            out.append(x.cpu())
            evals += nfe * len(chunk)
        self.last_nfe = mean_nfe(evals, len(seeds))
        return torch.cat(out)


def load(path, device="cpu"):
    """A Run from a run folder (its latest snapshot), a snapshot file, or an imported checkpoint."""
    return Run(path, device)


def score(samples, metric, ref_stats=None, ref_dataset=None, mode="legacy_tensorflow", inception=None, device="cpu"):
    """Score samples (float in [-1, 1], or uint8 images, or points) with a metric of `pfgmbench eval`."""
    from pfgmbench.evaluate import Scorer

    x = torch.as_tensor(samples)
    if x.dim() == 4 and x.dtype != torch.uint8:
        x = to_uint8(x)
    return Scorer(metric, ref_stats, ref_dataset, mode, inception, device=device).score(x.numpy())


def save_grid(samples, path):
    """A PNG grid of image samples (float in [-1, 1] or uint8)."""
    x = torch.as_tensor(samples)
    _save_grid(path, x if x.dtype == torch.uint8 else to_uint8(x))
