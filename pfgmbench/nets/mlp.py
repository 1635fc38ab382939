"""A residual MLP denoiser for point-cloud toys (2-D shapes, the N = 1000 Gaussian mixture)."""
import math

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, dim, out_dim=None, hidden=256, depth=4, label_dim=0, emb_dim=64):
        super().__init__()
        self.emb_dim = emb_dim
        self.inp = nn.Linear(dim, hidden)
        self.emb = nn.Sequential(nn.Linear(emb_dim + label_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, out_dim or dim))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)
        self.output_layers = ("out",)

    def embed_noise(self, c_noise):
        half = self.emb_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=c_noise.device) / half)
        ang = c_noise[:, None] * freqs[None] * 100
        return torch.cat([ang.cos(), ang.sin()], dim=1)

    def forward(self, x, c_noise, class_labels=None, augment_labels=None):
        e = self.embed_noise(c_noise)
        if class_labels is not None:
            e = torch.cat([e, class_labels], dim=1)
        h = self.inp(x) + self.emb(e)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)
