"""Toy point clouds: 2-D shapes and the PFGM++ authors' high-dimensional Gaussian mixture.

Each toy is a fixed point set drawn from a fixed seed (train and test use different seeds).
"""
import math

import numpy as np
import torch

from pfgmbench.data.base import Dataset

N_POINTS_2D = 8192


def _moons(rng, n):
    t = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x - 0.5, y - 0.25], 1) + rng.normal(0, 0.05, (n, 2))
    return pts


def _eight_gaussians(rng, n):
    k = rng.integers(0, 8, n)
    centres = np.stack([np.cos(k * math.pi / 4), np.sin(k * math.pi / 4)], 1) * 1.5
    return centres + rng.normal(0, 0.1, (n, 2))


def _checkerboard(rng, n):
    x1 = rng.uniform(-2, 2, n)
    x2 = rng.uniform(0, 1, n) + rng.integers(0, 2, n) * 2 - 2 + (np.floor(x1) % 2)
    return np.stack([x1, x2], 1) * 0.75


def _heart(rng, n):
    t = rng.uniform(0, 2 * math.pi, n)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return np.stack([x, y], 1) / 12 + rng.normal(0, 0.03, (n, 2))


def _text(rng, n, text="PFGM"):
    """Points on the dark pixels of `text` rendered with PIL's built-in font."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    img = Image.new("L", (8 * len(text) + 4, 14), 0)
    ImageDraw.Draw(img).text((2, 1), text, fill=255, font=font)
    ys, xs = np.nonzero(np.array(img) > 127)
    pick = rng.integers(0, len(xs), n)
    pts = np.stack([xs[pick], -ys[pick]], 1).astype(np.float64) + rng.uniform(-0.5, 0.5, (n, 2))
    pts -= pts.mean(0)
    return pts / np.abs(pts).max() * 1.8


GMM1000_LATENT_STD, GMM1000_NOISE = 0.2, 0.01


def gmm1000_projection():
    """The fixed 10 x 1000 map of the gmm1000 toy (its metric needs it too)."""
    return np.random.default_rng(1000).normal(0, 1, (10, 1000)) / math.sqrt(10)


def _gmm1000(rng, n):
    """Two Gaussians (means +-1, std 0.2) in 10-d, mapped to N=1000 by a fixed matrix, + 0.01 noise."""
    proj = gmm1000_projection()
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)[:, None]
    z = sign + rng.normal(0, GMM1000_LATENT_STD, (n, 10))
    return z @ proj + rng.normal(0, GMM1000_NOISE, (n, 1000))


TOYS = {"moons": (_moons, N_POINTS_2D), "8gaussians": (_eight_gaussians, N_POINTS_2D),
        "checkerboard": (_checkerboard, N_POINTS_2D), "heart": (_heart, N_POINTS_2D),
        "text": (_text, N_POINTS_2D), "gmm1000": (_gmm1000, 2000)}


def dimension(name):
    """The dimension of a toy's points, without drawing them."""
    return 1000 if name == "gmm1000" else 2


def load(name, split="train"):
    fn, n = TOYS[name]
    rng = np.random.default_rng(0 if split == "train" else 1)
    pts = torch.tensor(fn(rng, n), dtype=torch.float32)
    return Dataset(name=f"{name}-{split}", data=pts)
