"""FID and IS with the Inception detector: a folder path through clean-fid's own loader and
an in-memory path for generator output (uint8, no PNG round trip) that gives the same numbers.

Reference statistics: an .npz with keys mu, sigma (EDM's and clean-fid's files both work),
or computed from a data set by `pfgmbench ref` and cached per data-set fingerprint.
"""
import hashlib
from pathlib import Path

import numpy as np
import torch

from pfgmbench.atomic import atomic_path
from pfgmbench.cache import cache_dir
from pfgmbench.errors import UserError
from pfgmbench.metrics.frechet import feature_stats, frechet_distance
from pfgmbench.metrics.inception_score import inception_score


class FeatureSink:
    """Collects features and probabilities batch by batch (feature statistics need all of them)."""

    def __init__(self):
        self.feats, self.probs = [], []

    def add(self, f, p):
        self.feats.append(f)
        self.probs.append(p)

    def result(self):
        if not self.feats:   # a rank with no samples (torchrun, few batches): the detector's dimensions
            return np.zeros((0, 2048)), np.zeros((0, 1008))
        return np.concatenate(self.feats), np.concatenate(self.probs)


def folder_features(detector, folder, batch_size=64, num=None):
    """Through clean-fid's get_folder_features (its file list, decoding and resizing)."""
    from cleanfid.fid import get_folder_features

    sink = FeatureSink()

    def model(x):
        f, p = detector.forward_prepared(x)
        sink.add(f.numpy(), p.numpy())
        return f

    get_folder_features(str(folder), model=model, num_workers=0, num=num, batch_size=batch_size,
                        device=torch.device(detector.device), mode=detector.mode, verbose=False)
    if not sink.feats:
        raise UserError(f"no images found in {folder}")
    return sink.result()


def memory_features(detector, batches_u8):
    """`batches_u8` yields uint8 (n, C, H, W) tensors, e.g. straight from the sampler."""
    sink = FeatureSink()
    for b in batches_u8:
        sink.add(*detector(b))
    return sink.result()


def load_ref_stats(path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"reference statistics not found: {path}; compute them with `pfgmbench ref` "
                        "or pass EDM's / clean-fid's .npz")
    try:
        with np.load(path) as z:
            return z["mu"].astype(np.float64), z["sigma"].astype(np.float64)
    except Exception as e:
        raise UserError(f"{path} is not a statistics file with keys mu and sigma ({type(e).__name__})") from None


def save_ref_stats(path, mu, sigma, **meta):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, **{k: np.asarray(v) for k, v in meta.items()})


def dataset_fingerprint(data_u8):
    h = hashlib.sha256()
    h.update(str(tuple(data_u8.shape)).encode())
    h.update(np.ascontiguousarray(data_u8).tobytes())
    return h.hexdigest()[:16]


def ref_stats_for_dataset(detector, name, data_u8, batch_size=64):
    """Reference statistics of a whole data set (uint8 array), cached by data fingerprint, detector
    and mode."""
    path = (cache_dir("ref-stats")
            / f"{name}-{detector.mode}-{detector.sha256[:12]}-{dataset_fingerprint(data_u8)}.npz")
    if not path.exists():
        chunks = (torch.from_numpy(np.ascontiguousarray(data_u8[i:i + batch_size]))
                  for i in range(0, len(data_u8), batch_size))
        feats, _ = memory_features(detector, chunks)
        mu, sigma = feature_stats(feats)
        save_ref_stats(path, mu, sigma, n=len(feats), mode=detector.mode)
    return path


def score(feats, probs, ref):
    """FID against (mu, sigma) and IS from the same forward pass."""
    mu, sigma = feature_stats(feats)
    is_mean, is_std = inception_score(probs)
    return {"fid": frechet_distance(mu, sigma, *ref), "is": is_mean, "is_std": is_std, "n": len(feats)}
