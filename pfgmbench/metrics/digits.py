"""Offline metrics for the digits proxy: fd-digits and is-digits.

A small CNN classifier trained by a fixed recipe on the digits train split. Its weights ship with
the package (as Inception's do for FID): float32 training is reproducible on one CPU but not across
CPUs (the same recipe gave weights eccdbc31bd7f on one machine and f8fb4dbc4010 on another, and the
data floor moved from 5.89 to 6.09), so a classifier trained on each machine would make every
fd-digits value machine-dependent. A recipe without shipped weights is trained on first use and
cached by the recipe's hash. fd-digits is the Fréchet distance on its 64-d penultimate features
against the train split; is-digits the Inception-Score formula on its 10 class
probabilities. Each value comes with the data-vs-data floor at the same sample count:
the held-out test split (297 images) against train.
"""
import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from pfgmbench.atomic import atomic_path
from pfgmbench.cache import cache_dir
from pfgmbench.data import load_dataset
from pfgmbench.errors import UserError
from pfgmbench.metrics.frechet import fd_from_features
from pfgmbench.metrics.inception_score import inception_score

RECIPE = {"version": 2, "epochs": 40, "batch": 64, "lr": 2e-3, "seed": 0, "shift": 1, "width": 32}
# Float reductions depend on the thread count: the classifier (and so every fd-digits value)
# would differ between a laptop, a torchrun worker (OMP_NUM_THREADS=1) and a CI runner.
CLASSIFIER_THREADS = 2
# the recipe's classifier as pfgmbench trained it (sha256 of its weights); every result records it
SHIPPED_SHA256 = {"366879740a1f": "f8fb4dbc40100fa0192715861f22c30b2c42c99ceac1244bb5f0c1c845f48393"}


class DigitsCNN(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(4 * w, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.body(x))


def _random_shift(x, g, k):
    """Random integer translation by up to k pixels (zero fill = background -1): robust features."""
    B = x.shape[0]
    pad = torch.nn.functional.pad(x, (k, k, k, k), value=-1)
    dx = torch.randint(0, 2 * k + 1, (B,), generator=g)
    dy = torch.randint(0, 2 * k + 1, (B,), generator=g)
    return torch.stack([pad[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8] for i in range(B)])


@contextmanager
def _fixed_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(CLASSIFIER_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train_classifier():
    """Train the recipe's classifier with gradients on (first use may come from inside a no_grad
    scope), a fixed thread count, and a forked RNG (the caller's random stream is untouched)."""
    with _fixed_threads(), torch.enable_grad(), torch.random.fork_rng(devices=[]):
        return _fit()


def _fit():
    r = RECIPE
    torch.manual_seed(r["seed"])
    g = torch.Generator().manual_seed(r["seed"])
    tr = load_dataset({"name": "digits"})
    net = DigitsCNN(r["width"])
    opt = torch.optim.Adam(net.parameters(), lr=r["lr"])
    for _ in range(r["epochs"]):
        perm = torch.randperm(len(tr), generator=g)
        for i in range(0, len(tr), r["batch"]):
            idx = perm[i:i + r["batch"]]
            x = _random_shift(tr.data[idx], g, r["shift"])
            loss = nn.functional.cross_entropy(net(x), tr.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


_CACHE = {}


def recipe_key():
    return hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]


def shipped_weights(key):
    return Path(__file__).with_name(f"digits-cnn-{key}.pt")


def weights_sha256(net):
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in net.state_dict().values())).hexdigest()


def classifier():
    """(network, test accuracy, sha256 of its weights): the shipped weights of the recipe, or for a
    recipe without them, trained once and then loaded from the cache by recipe hash (the weights' hash
    goes into every result, so a changed classifier is visible)."""
    key = recipe_key()
    if key in _CACHE:
        return _CACHE[key]
    with torch.random.fork_rng(devices=[]):   # building the module must not move the caller's RNG
        net = DigitsCNN(RECIPE["width"])
    shipped = shipped_weights(key)
    if shipped.exists():
        net.load_state_dict(torch.load(shipped, weights_only=True))
        if weights_sha256(net) != SHIPPED_SHA256.get(key):
            raise UserError(f"{shipped} is not the classifier this version ships (its sha256 differs); "
                            "restore it with git checkout or reinstall pfgmbench")
    else:
        path = cache_dir("digits-classifier") / f"cnn-{key}.pt"
        if path.exists():
            try:
                net.load_state_dict(torch.load(path, weights_only=True))
            except Exception:   # a torn or foreign file: train again and replace it
                path.unlink(missing_ok=True)
        if not path.exists():
            net = _train_classifier()
            with atomic_path(path) as tmp:
                torch.save(net.state_dict(), tmp)
    net.eval()
    te = load_dataset({"name": "digits"}, split="test")
    with torch.no_grad():
        acc = (net(te.data).argmax(1) == te.labels).float().mean().item()
    _CACHE[key] = (net, acc, weights_sha256(net))
    return _CACHE[key]


@torch.no_grad()
def features_and_probs(images):
    """images: float in [-1, 1] (n, 1, 8, 8) or uint8 (n, 1, 8, 8)."""
    x = torch.as_tensor(images)
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 127.5 - 1
    net = classifier()[0]
    with _fixed_threads():   # the same features whatever the caller's thread count
        f = net.body(x.float())
        return f.double().numpy(), torch.softmax(net.head(f), 1).double().numpy()


def _ref_features():
    return features_and_probs(load_dataset({"name": "digits"}).data)[0]


def _quantised(x):
    """The same uint8 round trip that samples go through, so the floor is like for like."""
    return ((x * 127.5 + 128).clamp(0, 255).to(torch.uint8))


def fd_digits(images, bootstrap=0):
    """{'value', 'n', 'floor', 'floor_n', 'accuracy', 'se'}: FD vs train; floor = test vs train at
    min(n, 297); se = the standard deviation over `bootstrap` resamples of the samples (0: not computed)."""
    from pfgmbench.metrics.bootstrap import bootstrap_se

    feats, _ = features_and_probs(images)
    ref = _ref_features()
    te = load_dataset({"name": "digits"}, split="test")
    n_floor = min(len(feats), len(te))
    floor_feats, _ = features_and_probs(_quantised(te.data[:n_floor]))
    _, acc, digest = classifier()
    return {"value": fd_from_features(feats, ref), "n": len(feats), "floor": fd_from_features(floor_feats, ref),
            "floor_n": n_floor, "accuracy": acc, "classifier_sha256": digest,
            "se": bootstrap_se(lambda f: fd_from_features(f, ref), feats, bootstrap)}


def is_digits(images, splits=10):
    _, probs = features_and_probs(images)
    te = load_dataset({"name": "digits"}, split="test")
    n_floor = min(len(probs), len(te))
    _, floor_probs = features_and_probs(_quantised(te.data[:n_floor]))
    mean, std = inception_score(probs, splits)
    fl, _ = inception_score(floor_probs, splits)
    _, acc, digest = classifier()
    return {"value": mean, "std": std, "n": len(probs), "floor": fl, "floor_n": n_floor,
            "accuracy": acc, "classifier_sha256": digest}
