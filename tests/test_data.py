import io
import json
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from pfgmbench.data import load_dataset
from pfgmbench.errors import UserError


def test_digits_split_is_fixed_and_scaled():
    tr, te = load_dataset({"name": "digits"}), load_dataset({"name": "digits"}, split="test")
    assert len(tr) == 1500 and len(te) == 297 and tr.shape == (1, 8, 8) and tr.N == 64
    assert tr.data.min() == -1 and tr.data.max() == 1 and tr.num_classes == 10
    assert torch.equal(tr.data, load_dataset({"name": "digits"}).data)
    # train and test are disjoint
    a = {tuple(x.flatten().tolist()) for x in te.data}
    assert sum(tuple(x.flatten().tolist()) in a for x in tr.data) < 5   # sklearn digits has a few duplicates


@pytest.mark.parametrize("name,dim", [("moons", 2), ("8gaussians", 2), ("checkerboard", 2), ("heart", 2),
                                      ("text", 2), ("gmm1000", 1000)])
def test_toys(name, dim):
    ds = load_dataset({"name": name})
    assert ds.shape == (dim,) and torch.isfinite(ds.data).all()


def test_gmm1000_has_two_modes():
    x = load_dataset({"name": "gmm1000"}).data.double()
    assert len(x) == 2000
    # projecting on the mean direction separates the two Gaussians
    u, s, v = torch.pca_lowrank(x - x.mean(0), q=2)
    proj = (x - x.mean(0)) @ v[:, 0]
    assert s[0] > 5 * s[1]
    assert ((proj > 0).float().mean() - 0.5).abs() < 0.1


def _png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_image_zip_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    z = tmp_path / "set.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i, a in enumerate(imgs):
            zf.writestr(f"00000/img{i:08d}.png", _png_bytes(a))
        zf.writestr("dataset.json", json.dumps({"labels": [[f"00000/img{i:08d}.png", i % 2] for i in range(5)]}))
    ds = load_dataset({"name": "imagefolder", "root": str(z)})
    assert ds.shape == (3, 4, 4) and ds.num_classes == 2
    assert torch.equal(ds.data[2], torch.from_numpy(imgs[2].transpose(2, 0, 1)))
    x = ds.batch(torch.tensor([0]))
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1


def test_image_folder(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((4, 4), 50 * i, np.uint8)).save(tmp_path / f"{i}.png")
    ds = load_dataset({"name": "imagefolder", "root": str(tmp_path)})
    assert ds.shape == (1, 4, 4) and ds.labels is None


def test_missing_image_folder_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_dataset({"name": "imagefolder", "root": str(tmp_path / "nope.zip")})


def test_broken_image_sets_are_clear_errors(tmp_path):
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable zip"):
        load_dataset({"name": "imagefolder", "root": str(tmp_path / "cut.zip")})
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / f"{i}.png")
    (folder / "dataset.json").write_text(json.dumps({"labels": [["0.png", 1]]}))
    with pytest.raises(UserError, match="no label for 1.png"):
        load_dataset({"name": "imagefolder", "root": str(folder)})
    (folder / "dataset.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_dataset({"name": "imagefolder", "root": str(folder)})


def test_cifar10_offline_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(UserError, match="download failed"):
        load_dataset({"name": "cifar10", "root": str(tmp_path)})
    assert not any(p.suffix == ".gz" and p.stat().st_size for p in tmp_path.rglob("*"))
    with pytest.raises(UserError, match="not found"):
        load_dataset({"name": "cifar10", "root": str(tmp_path), "download": False})
