"""What produced a number: git commit (with -dirty), time stamp."""
import datetime
import subprocess
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


_COMMIT = None


CODE = ("pfgmbench", "experiments", "pyproject.toml")   # what can change a number (results/ cannot)


def git_commit():
    """The commit this process started from (+ '-dirty' if the code or presets differed from it then):
    code edited while a long sweep runs must not change what its rows say produced them."""
    global _COMMIT
    if _COMMIT is None:
        _COMMIT = _read_commit()
    return _COMMIT


def _read_commit():
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=_ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE], cwd=_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
