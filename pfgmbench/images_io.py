"""Writing samples: one PNG per seed (000042.png), an .npz, and a sample grid."""
import math
from pathlib import Path

import numpy as np
import torch

from pfgmbench.atomic import atomic_path


def to_uint8(x):
    """uint8 = clip(x * 127.5 + 128, 0, 255) (EDM's saving convention)."""
    return (x * 127.5 + 128).clip(0, 255).to(torch.uint8)


def png_name(seed):
    return f"{seed:06d}.png"


def save_png(path, img_u8):
    """img_u8: (C, H, W) uint8 tensor."""
    from PIL import Image

    arr = img_u8.permute(1, 2, 0).cpu().numpy()
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def load_png_folder(folder):
    """(seeds or indices, uint8 array (n, C, H, W)) from a folder of PNGs, sorted by name."""
    from PIL import Image

    from pfgmbench.errors import UserError

    files = sorted(Path(folder).glob("*.png"))
    imgs = []
    for f in files:
        try:
            a = np.array(Image.open(f))
        except OSError:
            raise UserError(f"{f} is not a readable PNG; remove it from {folder}") from None
        imgs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        if imgs[-1].shape != imgs[0].shape:
            raise UserError(f"{folder} mixes image sizes: {files[0].name} is {'x'.join(map(str, imgs[0].shape))}, "
                            f"{f.name} is {'x'.join(map(str, imgs[-1].shape))} (CxHxW); keep one model's samples "
                            "per folder")
    return files, (np.stack(imgs) if imgs else np.zeros((0,), np.uint8))


def save_grid(path, images_u8, upscale=None):
    """A square-ish grid of (n, C, H, W) uint8 images, upscaled so small images stay visible."""
    from PIL import Image

    n, C, H, W = images_u8.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = torch.zeros(C, rows * (H + 1) + 1, cols * (W + 1) + 1, dtype=torch.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[:, 1 + r * (H + 1):1 + r * (H + 1) + H, 1 + c * (W + 1):1 + c * (W + 1) + W] = images_u8[i]
    arr = grid.permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if C == 1 else arr)
    scale = upscale or max(1, 256 // (H * cols) * 2, 1)
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_points_plot(path, points, reference=None):
    """Scatter plot of 2-D samples (first two coordinates) over the data, for toy presets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if reference is not None:
        ax.scatter(reference[:, 0], reference[:, 1], s=1, c="0.8", label="data")
    ax.scatter(points[:, 0], points[:, 1], s=1, c="C0", label="samples")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=6)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
