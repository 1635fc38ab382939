"""Synthetic images of any shape, for measuring throughput without downloads: `synthetic` is
CIFAR-10's shape (3x32x32), `synthetic-3x64x64` FFHQ-64's. Smooth random images (low-pass noise)
with 10 random labels, fixed by a seed; every output made from them says 'synthetic'."""
import re

import torch

from pfgmbench.data.base import Dataset
from pfgmbench.errors import UserError

SIZE = {"train": 2048, "test": 512}
PATTERN = re.compile(r"^synthetic(?:-(\d+)x(\d+)x(\d+))?$")


def is_synthetic(name):
    return str(name).startswith("synthetic")


def shape_of(name):
    m = PATTERN.match(str(name))
    if not m:
        raise UserError(f"synthetic data set '{name}': write synthetic or synthetic-CxHxW, e.g. synthetic-3x64x64")
    return (3, 32, 32) if m.group(1) is None else tuple(int(g) for g in m.groups())


def load(name, split="train"):
    C, H, W = shape_of(name)
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = SIZE[split]
    coarse = torch.rand(n, C, max(H // 4, 1), max(W // 4, 1), generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)
    data = (x * 255).round().clamp(0, 255).to(torch.uint8)
    labels = torch.randint(10, (n,), generator=g)
    return Dataset(name=f"synthetic-{C}x{H}x{W}-{split}", data=data, labels=labels, num_classes=10)
