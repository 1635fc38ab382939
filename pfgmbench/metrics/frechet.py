"""Fréchet distance between Gaussians fitted to features (Heusel et al. 2017).

d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)).
Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which equal
those of the symmetric PSD matrix A S2 A with A = S1^(1/2): two symmetric eigendecompositions
in float64 instead of a general (complex Schur) matrix square root.
"""
import numpy as np


def feature_stats(feats):
    """(mu, sigma) with the unbiased covariance, as clean-fid and EDM compute them."""
    feats = np.asarray(feats, dtype=np.float64)
    return feats.mean(0), np.cov(feats, rowvar=False)


def _sqrt_psd(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"statistics differ in size: {mu1.shape} vs {mu2.shape}")
    a = _sqrt_psd(s1)
    m = a @ s2 @ a
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(ev, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fd_from_features(f1, f2):
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))
