"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", eq. 4) and the
Fréchet distance (Heusel et al. 2017), on any embeddings.

KID is the unbiased estimate of the squared MMD under the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3: the mean kernel value within each set (diagonal left out) minus
twice the mean across the sets. Unbiased at any sample size, so it is ~0 (and can be slightly
negative) for two samples of one distribution. The Fréchet distance needs the covariance of
d-dimensional features; with fewer images than dimensions it is biased upwards by an amount
that depends on n (Chong & Forsyth 2020), so it only compares sets of the same n.

Arrays: (n, d) float, one row per image.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, m) float64 kernel matrix (x.y / d + 1)^3."""
    d = x.shape[1]
    return (x.astype(np.float64) @ y.astype(np.float64).T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD between the rows of x (n >= 2) and of y (m >= 2)."""
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError("KID needs at least two images in each set")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def kid(x: np.ndarray, y: np.ndarray, *, subsets: int = 100, seed: int = 0) -> dict[str, float]:
    """{"kid": MMD² on all rows, "kid_std": spread of the estimate over ``subsets`` random halves
    of both sets (a conservative error bar: a half-size estimate varies more than the full one)}."""
    rng = np.random.default_rng(seed)
    half_x, half_y = max(2, len(x) // 2), max(2, len(y) // 2)
    halves = [mmd2_unbiased(x[rng.choice(len(x), half_x, replace=False)], y[rng.choice(len(y), half_y, replace=False)])
              for _ in range(subsets)]
    return {"kid": mmd2_unbiased(x, y), "kid_std": float(np.std(halves)), "n_a": len(x), "n_b": len(y)}


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """|mu_x - mu_y|² + tr(S_x + S_y - 2 (S_x S_y)^1/2), the square root through the symmetric
    form S_x^1/2 S_y S_x^1/2 (eigenvalues clipped at 0, so rank-deficient covariances work)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    mu = x.mean(0) - y.mean(0)
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(sx)
    root_x = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root_x @ sy @ root_x)
    return float(mu @ mu + np.trace(sx) + np.trace(sy) - 2.0 * np.sqrt(np.clip(inner, 0, None)).sum())
