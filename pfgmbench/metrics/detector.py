"""The TF Inception detector (inception-2015-12-05.pt, TorchScript) that EDM and PFGM++ used.

Where it comes from, in order: --inception PATH, $PFGMBENCH_INCEPTION, clean-fid's cache
path (/tmp/inception-2015-12-05.pt), our cache; else only an explicit --download.
One forward pass gives both the 2048-d pool features (FID) and, through the output layer
without its bias, the 1008-way softmax (IS).
"""
import functools
import os
import platform
import urllib.request
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pfgmbench.atomic import atomic_path, file_sha256, write_text
from pfgmbench.cache import cache_dir
from pfgmbench.errors import UserError

INCEPTION_URL = ("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
                 "inception-2015-12-05.pt")
FILE_NAME = "inception-2015-12-05.pt"
MODES = ("legacy_tensorflow", "clean")


def cleanfid_cache_path():
    return Path("./" if platform.system() == "Windows" else "/tmp") / FILE_NAME


def candidate_paths(explicit=None):
    out = []
    if explicit:
        out.append(("--inception", Path(explicit)))
    if os.environ.get("PFGMBENCH_INCEPTION"):
        out.append(("PFGMBENCH_INCEPTION", Path(os.environ["PFGMBENCH_INCEPTION"])))
    out.append(("clean-fid cache", cleanfid_cache_path()))
    out.append(("pfgmbench cache", cache_dir() / FILE_NAME))
    return out


def sha256(path):
    """The detector file's sha256, hashed once per process (keys of cells and caches ask for it again)."""
    st = os.stat(path)
    return _sha256_of(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256_of(path, size, mtime_ns):     # size and mtime: a replaced file is hashed again
    return file_sha256(path)


def download(dest=None, timeout_s=60, url=INCEPTION_URL):
    """Fetch the detector with a timeout into `dest` atomically; record its sha256 beside it."""
    dest = Path(dest or cache_dir() / FILE_NAME)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp, atomic_path(dest) as tmp:
            with open(tmp, "wb") as f:
                while True:
                    block = resp.read(1 << 20)
                    if not block:
                        break
                    f.write(block)
    except OSError as e:   # URLError, timeouts, refused connections
        raise UserError(f"could not download {FILE_NAME} ({type(e).__name__}: {getattr(e, 'reason', e)}); "
                        f"fetch {url} elsewhere and pass --inception PATH") from None
    write_text(dest.with_suffix(".sha256"), sha256(dest) + "\n")
    return dest


def resolve_detector(explicit=None, allow_download=False):
    """Path of the detector file, or a one-line UserError saying which file to put where."""
    cands = candidate_paths(explicit)
    if explicit and not Path(explicit).is_file():
        raise UserError(f"--inception {explicit}: no such file; it should be {FILE_NAME} from {INCEPTION_URL}")
    for _, p in cands:
        if p.is_file():
            return p
    if allow_download:
        return download()
    raise UserError(f"the Inception detector {FILE_NAME} is not available offline; download {INCEPTION_URL} "
                    f"and pass --inception PATH (or set PFGMBENCH_INCEPTION, or put it at "
                    f"{cache_dir() / FILE_NAME}), or add --download when online")


class InceptionDetector:
    """Features (n, 2048) and class probabilities (n, 1008) from uint8 images, in one pass."""

    def __init__(self, path, mode="legacy_tensorflow", device="cpu"):
        if mode not in MODES:
            raise UserError(f"unknown FID mode '{mode}'; choose {' or '.join(MODES)}")
        try:
            self.net = torch.jit.load(str(path), map_location=device).eval()
        except Exception as e:
            raise UserError(f"{path} is not a TorchScript Inception detector ({type(e).__name__}); "
                            f"re-download {FILE_NAME}") from None
        self.path, self.mode, self.device = Path(path), mode, device
        self.sha256 = sha256(path)      # part of every cache key: another detector gives other features
        from cleanfid.resize import build_resizer

        self.resize = build_resizer(mode)   # clean: PIL bicubic to 299 in float; legacy: identity

    def prepare(self, images_u8):
        """uint8 (n, C, H, W) -> float [0, 255] (n, 3, h, w), resized the way clean-fid's loader does."""
        x = torch.as_tensor(images_u8)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)    # clean-fid converts every image to RGB
        if self.mode == "legacy_tensorflow":
            return x.to(torch.float32)
        arr = x.permute(0, 2, 3, 1).numpy()
        return torch.from_numpy(np.stack([self.resize(a) for a in arr]).transpose(0, 3, 1, 2).copy())

    @torch.no_grad()
    def forward_prepared(self, x):
        """x: float [0, 255] as clean-fid's data loader yields it. Returns float64 (features, probabilities)."""
        x = x.to(self.device, torch.float32)
        if self.mode == "legacy_tensorflow":
            feats = self.net(x, return_features=True)          # resize + normalise inside
        else:
            feats = self.net.layers((x - 128) / 128)            # already 299 x 299
        feats = feats.reshape(x.shape[0], -1)
        probs = F.softmax(F.linear(feats, self.net.output.weight), dim=1)   # no output bias (IS)
        return feats.double().cpu(), probs.double().cpu()

    def __call__(self, images_u8):
        """(features, probabilities) as float64 numpy arrays."""
        f, p = self.forward_prepared(self.prepare(images_u8))
        return f.numpy(), p.numpy()
