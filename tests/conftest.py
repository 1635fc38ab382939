import os
import subprocess
import sys

import pytest


def run_cli(*args, cwd=None, env=None, timeout=600):
    """Run `python -m pfgmbench ARGS`; returns CompletedProcess with text output."""
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "pfgmbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=timeout)


def randomise(module, seed=0, scale=0.3):
    """Weights far from the near-zero initialisations, so that a wrong layer shows in the output."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module


@pytest.fixture
def cli():
    return run_cli


def assert_clean_error(proc, *words):
    """Exit code 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w.lower() in err.lower(), (w, err)
