"""Inception Score (Salimans et al. 2016) as EDM / StyleGAN computed it.

IS_k = exp(mean_x KL(p(y|x) || mean_x p(y|x))) over 10 contiguous splits, float64;
report the mean and the population std of the IS_k.
"""
import numpy as np


def inception_score(probs, splits=10):
    probs = np.asarray(probs, dtype=np.float64)
    splits = max(1, min(splits, len(probs)))
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(np.clip(part, 1e-300, None)) - np.log(np.clip(marginal, 1e-300, None)))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
