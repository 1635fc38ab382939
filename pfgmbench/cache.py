"""The user cache folder (never inside site-packages): $PFGMBENCH_CACHE or ~/.cache/pfgmbench."""
import os
from pathlib import Path


def cache_dir(*parts):
    root = Path(os.environ.get("PFGMBENCH_CACHE") or Path.home() / ".cache" / "pfgmbench")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
