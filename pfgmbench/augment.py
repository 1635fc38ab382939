"""Non-leaky geometric augmentation (EDM appendix): the net sees the augmentation as 9 labels,
so it learns the clean distribution when the labels are zero at sampling time.

Labels: xflip, yflip, rot90 (cos-1, sin), integer translate (x, y), log2 scale, rotation (cos-1, sin).
"""
import math

import torch
import torch.nn.functional as F

AUGMENT_DIM = 9


def augment(images, p, generator=None):
    """Apply random flips / rot90 / translation / scale / rotation, each with probability p
    (x-flip always at 50%, as in EDM); return (augmented images, labels (B, 9))."""
    B, _, H, W = images.shape
    dev = images.device

    def coin(prob):
        return (torch.rand(B, generator=generator, device=dev) < prob).float()

    xflip = coin(0.5)
    yflip = coin(p) * coin(0.5)
    k90 = coin(p) * torch.randint(0, 4, (B,), generator=generator, device=dev).float()
    tx = coin(p) * torch.randint(-W // 8, W // 8 + 1, (B,), generator=generator, device=dev).float()
    ty = coin(p) * torch.randint(-H // 8, H // 8 + 1, (B,), generator=generator, device=dev).float()
    log_s = coin(p) * torch.randn(B, generator=generator, device=dev) * 0.2
    theta = coin(p) * (torch.rand(B, generator=generator, device=dev) * 2 - 1) * math.pi

    angle = k90 * math.pi / 2 + theta
    scale = torch.exp2(log_s)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    sx = 1 - 2 * xflip
    sy = 1 - 2 * yflip
    mat = torch.zeros(B, 2, 3, device=dev)
    mat[:, 0, 0], mat[:, 0, 1] = cos * sx, -sin * sy
    mat[:, 1, 0], mat[:, 1, 1] = sin * sx, cos * sy
    mat[:, 0, 2], mat[:, 1, 2] = -tx * 2 / W, -ty * 2 / H
    grid = F.affine_grid(mat, images.shape, align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    labels = torch.stack([xflip, yflip, torch.cos(k90 * math.pi / 2) - 1, torch.sin(k90 * math.pi / 2),
                          tx / W, ty / H, log_s, torch.cos(theta) - 1, torch.sin(theta)], dim=1)
    return out, labels
