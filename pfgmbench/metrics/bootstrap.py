"""The sampling error of a metric: its spread over bootstrap resamples of the scored samples."""
import numpy as np

SEED = 20231128      # fixed: a rerun reports the same standard error


def bootstrap_se(metric, samples, B, seed=SEED):
    """Std of metric(resample) over B resamples (with replacement) of the rows of `samples`; None if B = 0."""
    if not B:
        return None
    samples = np.asarray(samples)
    rng = np.random.default_rng(seed)
    n = len(samples)
    values = [metric(samples[rng.integers(0, n, n)]) for _ in range(int(B))]
    return float(np.std(values, ddof=1))
