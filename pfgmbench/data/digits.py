"""scikit-learn's bundled 8x8 handwritten digits: the embedded default (no network)."""
import torch

from pfgmbench.data.base import Dataset

SPLIT_SEED = 20230418   # fixed: the train/test split never changes between runs
N_TEST = 297            # 1797 = 1500 train + 297 test (REFERENCE 8)


def load(split="train"):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0 * 2 - 1   # [0,16] -> [-1,1]
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    idx = perm[N_TEST:] if split == "train" else perm[:N_TEST]
    return Dataset(name=f"digits-{split}", data=x[idx].contiguous(), labels=y[idx].contiguous(), num_classes=10)


def upsample(x, factor=4):
    """8x8 -> 8 factor x 8 factor, each pixel a factor x factor block (nearest neighbour): the data then
    span a 64-dim subspace of the N = 64 factor^2 coordinates, aligned with a patch-`factor` network."""
    return torch.nn.functional.interpolate(x, scale_factor=factor, mode="nearest")


def downsample(x, factor=4):
    """The exact inverse of `upsample` on its range, and the orthogonal projection onto it elsewhere:
    the mean of each block. (A bilinear upsample, used before, is blurred by block means: the data set
    itself scored fd-digits ~150 against a floor of 6.)"""
    return torch.nn.functional.avg_pool2d(x, factor)


def load_upsampled(split="train", factor=4):
    """The digits upsampled `factor` x to 8 factor x 8 factor: N = 64 factor^2 (32x32: N = 1024), a proxy
    in the paper's D/N regime where the mapped D values keep thin tails (REFERENCE 9)."""
    d = load(split)
    return Dataset(name=f"digits{8 * factor}-{split}", data=upsample(d.data, factor).contiguous(), labels=d.labels,
                   num_classes=10)
