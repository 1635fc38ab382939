"""The in-memory data set every loader returns."""
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class Dataset:
    name: str
    data: torch.Tensor                   # (n, C, H, W) images or (n, dim) points; uint8 or float32
    labels: Optional[torch.Tensor] = None  # (n,) int64 class indices
    num_classes: int = 0

    def __len__(self):
        return self.data.shape[0]

    @property
    def shape(self):
        """Shape of one example."""
        return tuple(self.data.shape[1:])

    @property
    def N(self):
        """Data dimension N = C*H*W (REFERENCE notation)."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def is_image(self):
        return self.data.dim() == 4

    def batch(self, idx):
        """Examples `idx` as float32 in [-1, 1] (uint8 images converted here, not up front)."""
        x = self.data[idx]
        if x.dtype == torch.uint8:
            x = x.to(torch.float32) / 127.5 - 1
        return x

    def one_hot(self, idx):
        if self.labels is None or not self.num_classes:
            return None
        return torch.nn.functional.one_hot(self.labels[idx], self.num_classes).to(torch.float32)
