"""`pfgmbench eval`: score a folder / .npz of samples, or a run generated in memory.

Every result records what produced it: metric, n, the floor for proxy metrics, and for FID /
IS the detector file, its sha256 and the reference statistics.
"""
import time
from pathlib import Path

import numpy as np
import torch

from pfgmbench import checkpoint, compute, distributed
from pfgmbench.data import load_dataset
from pfgmbench.errors import UserError
from pfgmbench.images_io import load_png_folder, to_uint8
from pfgmbench.metrics import HIGHER_IS_BETTER
from pfgmbench.metrics.bootstrap import bootstrap_se
from pfgmbench.physics import build_family
from pfgmbench.progress import Progress
from pfgmbench.seeds import format_seeds
from pfgmbench.solvers import mean_nfe

IMAGE_METRICS = ("fid", "is")
DIGIT_METRICS = ("fd-digits", "is-digits")
TOY = ("mmd", "swd", "energy", "gmm-fd")
METRICS = IMAGE_METRICS + DIGIT_METRICS + TOY
BOOTSTRAP = {"fd-digits": 50, "swd": 20, "mmd": 20, "energy": 20, "gmm-fd": 50}   # resamples per value


def load_samples(path):
    """uint8 images (n, C, H, W) from a PNG folder or .npz, or float points (n, d) from an .npz."""
    path = Path(path)
    if path.is_dir() and (path / "samples.npz").exists() and not any(path.glob("0*.png")):
        path = path / "samples.npz"
    if path.is_file() and path.suffix == ".npz":
        try:
            with np.load(path) as z:
                if "samples" not in z.files:
                    raise UserError(f"{path} has no 'samples' array (it has {', '.join(z.files) or 'none'}); "
                                    "save the samples as np.savez(path, samples=x)")
                return z["samples"]
        except (OSError, ValueError):
            raise UserError(f"{path} is not a readable .npz of samples") from None
    if path.is_dir():
        files, arr = load_png_folder(path)
        if not files:
            raise UserError(f"no PNG images or samples.npz in {path}")
        return arr
    raise UserError(f"samples not found: {path}; pass a folder of PNGs or a samples.npz")


def scorer_identity(metric, inception=None, mode="legacy_tensorflow"):
    """What, beside the samples, decides an image metric's value (the detector's bytes and the FID
    mode), for the keys of results cells; {} for the built-in proxy metrics."""
    if metric not in IMAGE_METRICS:
        return {}
    from pfgmbench.metrics import detector

    return {"detector": detector.sha256(detector.resolve_detector(inception)), "mode": mode}


class Scorer:
    """Holds what a metric needs (detector, reference) so a series of checkpoints reuses it."""

    def __init__(self, metric, ref_stats=None, ref_dataset=None, mode="legacy_tensorflow", inception=None,
                 download=False, device="cpu", bootstrap=None):
        if metric not in METRICS:
            raise UserError(f"unknown metric '{metric}'; choose one of {', '.join(METRICS)}")
        self.metric, self.mode, self.ref_dataset = metric, mode, ref_dataset
        # the sampling error of each value (bootstrap over the samples): cheap for the proxy metrics
        self.bootstrap = BOOTSTRAP.get(metric, 0) if bootstrap is None else int(bootstrap)
        self.info = {"metric": metric}
        if metric in IMAGE_METRICS:
            from pfgmbench.metrics import detector, fid

            path = detector.resolve_detector(inception, allow_download=download)
            self.detector = detector.InceptionDetector(path, mode, device)
            self.info.update(mode=mode, detector=str(path), detector_sha256=self.detector.sha256)
            if metric == "fid":
                if ref_stats is None:
                    if ref_dataset is None:
                        raise UserError("FID needs --ref-stats FILE.npz or --ref-dataset NAME")
                    ds = load_dataset({"name": ref_dataset})
                    if ds.data.dtype != torch.uint8:
                        ds.data = to_uint8(ds.data)
                    ref_stats = fid.ref_stats_for_dataset(self.detector, ref_dataset, ds.data.numpy())
                self.ref = fid.load_ref_stats(ref_stats)
                self.info["ref_stats"] = str(ref_stats)
        elif metric in TOY:
            if ref_dataset is None:
                raise UserError(f"{metric} needs the data set to compare with: --ref-dataset NAME (e.g. moons)")
            self.train = load_dataset({"name": ref_dataset}).data
            self.test = load_dataset({"name": ref_dataset}, split="test").data
            self.info["ref_dataset"] = ref_dataset

    def score(self, samples):
        """samples: uint8 images or float points (numpy or torch), or an iterator of uint8 batches."""
        t0 = time.time()
        m = self.metric
        if m in IMAGE_METRICS:
            from pfgmbench.metrics import fid

            batches = samples if not isinstance(samples, (np.ndarray, torch.Tensor)) else (
                torch.as_tensor(samples[i:i + 64]) for i in range(0, len(samples), 64))
            feats, probs = fid.memory_features(self.detector, batches)
            out = self.score_features(feats, probs)
        elif m in DIGIT_METRICS:
            from pfgmbench.metrics import digits

            x = torch.as_tensor(np.asarray(samples))
            if tuple(x.shape[1:]) == (1, 32, 32):   # the 32x32 regime proxy: scored at the classifier's 8x8
                x = digits_to_8x8(x)
            if tuple(x.shape[1:]) != (1, 8, 8):
                raise UserError(f"{m} scores 8x8 grey digits (or 32x32, pooled), got samples of shape "
                                f"{tuple(x.shape[1:])}")
            r = digits.fd_digits(x, self.bootstrap) if m == "fd-digits" else digits.is_digits(x)
            out = {"value": r["value"], "n": r["n"], "floor": r["floor"], "floor_n": r["floor_n"],
                   "classifier_accuracy": r["accuracy"], "detector": f"digits-cnn:{r['classifier_sha256'][:12]}",
                   "value_se": r.get("se"), **({"std": r["std"]} if "std" in r else {})}
        else:
            from pfgmbench.metrics.toy import TOY_METRICS

            x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
            if x.shape[1:] != self.train.shape[1:]:
                raise UserError(f"samples of shape {tuple(x.shape[1:])} do not match data set "
                                f"'{self.ref_dataset}' ({tuple(self.train.shape[1:])})")
            fn = TOY_METRICS[m]
            n = min(len(x), len(self.test))
            out = {"value": fn(x, self.train), "n": len(x), "floor": fn(self.test[:n], self.train), "floor_n": n,
                   "value_se": bootstrap_se(lambda s: fn(s, self.train), x.numpy(), self.bootstrap)}
        out.update(self.info)
        out["eval_s"] = round(time.time() - t0, 3)
        return out

    def score_features(self, feats, probs):
        from pfgmbench.metrics.frechet import feature_stats

        mu, sigma = feature_stats(feats) if self.metric == "fid" else (None, None)
        return self.score_stats(mu, sigma, len(feats), probs)

    def score_stats(self, mu, sigma, n, probs):
        """FID from feature statistics (possibly reduced over ranks) and IS from probabilities."""
        from pfgmbench.metrics.frechet import frechet_distance
        from pfgmbench.metrics.inception_score import inception_score

        is_mean, is_std = inception_score(probs)
        if self.metric == "fid":
            return {"value": frechet_distance(mu, sigma, *self.ref), "n": n, "is": is_mean, "is_std": is_std}
        return {"value": is_mean, "std": is_std, "n": n}

    def score_folder(self, folder):
        if self.metric in IMAGE_METRICS:
            from pfgmbench.metrics import fid

            t0 = time.time()
            out = self.score_features(*fid.folder_features(self.detector, folder))
            out.update(self.info)
            out["eval_s"] = round(time.time() - t0, 3)
            return out
        return self.score(load_samples(folder))


def score_snapshot(scorer, ckpt, seeds, steps=None, device="cpu", alpha=0.0, progress=True, net_transform=None,
                   sampler=None, sample=None):
    """Generate `seeds` from `ckpt` in memory and score them. Records the fraction of image
    samples with any value outside [-1, 1] by more than one grey level (out_of_range: most
    samples, slightly) and beyond +-2, twice the data range (far_out: heavy-tailed small D).
    Under torchrun each rank generates whole batches of seeds (generate.rank_share); feature
    statistics are all-reduced and per-sample outputs gathered in seed order, so the score does not
    depend on the ranks. `sample` replaces the checkpoint's sampling settings (a sweep over sample.*
    scores one trained model several ways)."""
    from pfgmbench.generate import rank_share, sample_images

    world, rank = distributed.world_size(), distributed.rank()
    cfg, net, snap = checkpoint.load_network(ckpt, device)
    if sample is not None:
        cfg = {**cfg, "sample": {**cfg["sample"], **sample}}
    if net_transform is not None:
        net = net_transform(net)
    shape, batch = tuple(snap["data_shape"]), int(cfg["sample"]["batch"])
    steps = int(steps or cfg["sample"]["steps"])
    family = build_family(cfg, shape)
    local = rank_share(seeds, batch, (sampler or family.default_sampler) in family.batch_coupled)
    counted = torch.zeros(2, dtype=torch.float64)   # [sum of NFE over samples, samples]

    def batches():
        bar = Progress(f"generate {Path(ckpt).name}", len(local), "images", enabled=progress and distributed.is_main())
        try:
            for chunk, x, nfe in sample_images(net, cfg, shape, snap["num_classes"], local, steps, batch, device,
                                               alpha, bar.advance, sampler):
                counted.add_(torch.tensor([nfe * len(chunk), len(chunk)], dtype=torch.float64))
                yield x.cpu()
        finally:
            bar.close()

    t0 = time.time()
    is_image = len(snap["data_shape"]) == 3
    counts = torch.zeros(3, dtype=torch.float64)   # [beyond +-1 by a grey level, beyond +-2, samples]

    def converted():
        for x in batches():
            if is_image:
                peak = x.flatten(1).abs().amax(1)
                counts[0] += int((peak > 1 + 2 / 255).sum())
                counts[1] += int((peak > 2).sum())
                counts[2] += x.shape[0]
                yield to_uint8(x)
            else:
                yield x

    if scorer.metric in IMAGE_METRICS and world > 1:
        from pfgmbench.metrics import fid

        feats, probs = fid.memory_features(scorer.detector, converted())
        mu, sigma, n = distributed.reduce_feature_stats(feats)
        res = scorer.score_stats(mu, sigma, n, distributed.gather_by_seed(probs, local))
        res.update(scorer.info)
    elif scorer.metric in IMAGE_METRICS:
        res = scorer.score(converted())
    else:
        parts = list(converted())
        x = torch.cat(parts).numpy() if parts else np.zeros((0, *snap["data_shape"]), np.float32)
        res = scorer.score(distributed.gather_by_seed(x, local) if world > 1 else x)
    counts = torch.as_tensor(distributed.gather_by_seed(counts[None].numpy(), [rank]).sum(0)) if world > 1 else counts
    if world > 1:
        counted = torch.as_tensor(distributed.gather_by_seed(counted[None].numpy(), [rank]).sum(0))
    res.update(checkpoint=str(ckpt), kimg=snap["kimg"], steps=steps, nfe=mean_nfe(*counted.tolist()), alpha=alpha,
               family=family.name, method=family.label(sampler or family.default_sampler), knobs=family.knobs(),
               compute=compute.label(cfg), sampler=sampler or family.default_sampler, seeds=format_seeds(seeds),
               total_s=round(time.time() - t0, 3),
               out_of_range=float(counts[0] / counts[2]) if counts[2] else None,
               far_out=float(counts[1] / counts[2]) if counts[2] else None)
    return res


def evaluate_run(scorer, snaps, base_seeds, seed_ranges=1, steps=None, device="cpu", sampler=None, progress=True):
    """Score each snapshot on `seed_ranges` disjoint seed ranges; Min and Top-3 over checkpoints
    (EDM: the best of the seed ranges for each checkpoint)."""
    rows = []
    span = max(base_seeds) - min(base_seeds) + 1      # shift by the span: disjoint for any seed list
    for snap in snaps:
        for k in range(seed_ranges):
            shifted = [s + k * span for s in base_seeds]
            rows.append(score_snapshot(scorer, snap, shifted, steps, device, progress=progress, sampler=sampler))
    if len(rows) == 1:
        return rows[0]
    higher = scorer.metric in HIGHER_IS_BETTER
    per_ckpt = {}
    for r in rows:
        v = per_ckpt.get(r["checkpoint"])
        per_ckpt[r["checkpoint"]] = r["value"] if v is None else (max if higher else min)(v, r["value"])
    vals = list(per_ckpt.values())
    best, top3 = (max(vals), None) if higher else min_and_top3(vals)
    return {"metric": scorer.metric, "rows": rows, "min": best, "top3_mean": top3, "n": rows[0]["n"],
            "per_checkpoint": per_ckpt, "value": best}


def min_and_top3(values):
    """PFGM++ tables: Min FID = best checkpoint; Top-3 avg = mean of the three best (lower is better);
    no Top-3 from fewer than three checkpoints."""
    v = sorted(values)
    if not v:
        return float("nan"), None
    return v[0], (float(np.mean(v[:3])) if len(v) >= 3 else None)


def digits_to_8x8(x):
    """32x32 digit images (uint8) mapped back to the 8x8 grid of the data and classifier by the exact
    inverse of the upsampling that made them (block means: noise within a block is averaged, not scored)."""
    from pfgmbench.data.digits import downsample

    return to_uint8(downsample(torch.as_tensor(x).to(torch.float32) / 127.5 - 1, 4))


def reference_dataset(metric, cfg):
    """The data set a metric compares with, when no reference statistics are given: the training
    data for FID and the toy distances; none for the digits metrics (their reference is built in)."""
    if metric in DIGIT_METRICS:
        return None
    name = cfg["data"]["name"]
    return name if name != "imagefolder" else None


def reference_statistics(dataset, root=None, mode="legacy_tensorflow", inception=None, download=False, device="cpu",
                         copy_to=None):
    """FID reference statistics of a whole data set (cached by fingerprint); returns their path."""
    import shutil

    from pfgmbench.atomic import atomic_path
    from pfgmbench.metrics import detector, fid

    path = detector.resolve_detector(inception, allow_download=download)
    det = detector.InceptionDetector(path, mode, device)
    ds = load_dataset({"name": dataset, "root": root, "download": download})
    data = ds.data if not ds.data.dtype.is_floating_point else to_uint8(ds.data)
    stats = fid.ref_stats_for_dataset(det, dataset, data.numpy())
    if copy_to:
        with atomic_path(copy_to) as tmp:      # never a half-copied file at --out
            shutil.copyfile(stats, tmp)
        return copy_to
    return stats


def device_for(requested):
    return distributed.device(requested)
