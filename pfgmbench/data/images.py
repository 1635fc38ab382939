"""Real image data sets: CIFAR-10 (torchvision) and an image folder / EDM-style zip (FFHQ-64)."""
import io
import json
import socket
import zipfile
from pathlib import Path

import numpy as np
import torch

from pfgmbench.data.base import Dataset
from pfgmbench.errors import UserError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
DEFAULT_ROOT = Path("datasets")
IMAGE_EXT = (".png", ".jpg", ".jpeg")


def load_cifar10(root=None, split="train", download=True, timeout_s=60):
    """CIFAR-10 through torchvision; stored as uint8 (n, 3, 32, 32)."""
    from torchvision.datasets import CIFAR10

    root = Path(root or DEFAULT_ROOT / "cifar10")
    train = split == "train"
    try:
        ds = CIFAR10(str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise UserError(f"CIFAR-10 not found under {root}/cifar-10-batches-py; download {CIFAR10_URL} "
                            f"and extract it into {root}, or allow download (data.download=true)") from None
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout_s)   # torchvision's urlretrieve has no timeout of its own
        try:
            ds = CIFAR10(str(root), train=train, download=True)
        except Exception as e:  # offline: URLError, timeout, partial archive
            raise UserError(f"CIFAR-10 is missing under {root} and the download failed ({type(e).__name__}); "
                            f"fetch {CIFAR10_URL} on a machine with internet and extract it into {root}") from None
        finally:
            socket.setdefaulttimeout(old)
    data = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    labels = torch.tensor(ds.targets, dtype=torch.int64)
    return Dataset(name=f"cifar10-{split}", data=data, labels=labels, num_classes=10)


def _decode(raw):
    from PIL import Image

    img = np.array(Image.open(io.BytesIO(raw)))
    if img.ndim == 2:
        img = img[:, :, None]
    return img.transpose(2, 0, 1)


def load_image_folder(root):
    """A folder or EDM-style zip of same-size images, with an optional dataset.json of labels.

    dataset.json: {"labels": [["00000/img00000000.png", 6], ...]} (EDM's dataset_tool format).
    """
    if not root:
        raise UserError("data.root is not set; pass --set data.root=PATH (a folder or .zip of PNGs)")
    root = Path(root)
    if not root.exists():
        raise UserError(f"image data set not found at {root}; create it with EDM's dataset_tool.py "
                        "(e.g. ffhq-64x64.zip) and pass --set data.root=PATH")
    try:
        if root.is_file() and root.suffix == ".zip":
            zf = zipfile.ZipFile(root)
            names = sorted(n for n in zf.namelist() if n.lower().endswith(IMAGE_EXT))
            read = zf.read
            meta = json.loads(zf.read("dataset.json")) if "dataset.json" in zf.namelist() else None
        elif root.is_dir():
            names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXT)
            read = lambda n: (root / n).read_bytes()  # noqa: E731
            meta_path = root / "dataset.json"
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
        else:
            raise UserError(f"{root} is neither a folder nor a .zip of images")
    except zipfile.BadZipFile:
        raise UserError(f"{root} is not a readable zip (truncated download?); recreate it with EDM's "
                        "dataset_tool.py") from None
    except ValueError:
        raise UserError(f"dataset.json in {root} is not valid JSON; recreate it with EDM's dataset_tool.py") from None
    if not names:
        raise UserError(f"no PNG/JPEG images found in {root}")
    try:
        imgs = [_decode(read(n)) for n in names]
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"an image in {root} cannot be read ({type(e).__name__}); recreate the data set") from None
    if len({im.shape for im in imgs}) != 1:
        raise UserError(f"images in {root} differ in size; resize them to one resolution first")
    data = torch.from_numpy(np.stack(imgs))
    labels, num_classes = None, 0
    if meta and meta.get("labels"):
        table = {name.replace("\\", "/"): int(lab) for name, lab in meta["labels"]}
        missing = [n for n in names if n not in table]
        if missing:
            raise UserError(f"dataset.json in {root} has no label for {missing[0]} ({len(missing)} image(s) "
                            "unlabelled); label every image or remove dataset.json for unconditional training")
        labels = torch.tensor([table[n] for n in names], dtype=torch.int64)
        num_classes = int(labels.max()) + 1
    return Dataset(name=root.stem, data=data, labels=labels, num_classes=num_classes)
