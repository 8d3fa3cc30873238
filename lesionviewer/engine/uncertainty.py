"""Consensus, per-pixel uncertainty maps, and the Generalized Energy Distance.

GED follows Kohl et al. 2018 (Probabilistic U-Net, eq. 5) with d(a, b) = 1 - IoU(a, b):
    D^2_GED = 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')].
Expectations over pairs of *distinct* samples (a U-statistic), so one sample has no diversity
and a single reference has E[d(Y, Y')] = 0. Two empty masks are at distance 0 (IoU := 1).
"""

from __future__ import annotations

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two HxW bool masks; 1.0 when both are empty."""
    a, b = a.astype(bool), b.astype(bool)
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return np.count_nonzero(a & b) / union


def pairwise_distances(samples: np.ndarray) -> np.ndarray:
    """NxN matrix of 1 - IoU between NxHxW bool samples (computed with one matrix product)."""
    flat = samples.reshape(len(samples), -1).astype(np.float32)
    inter = flat @ flat.T
    area = np.diag(inter)
    union = area[:, None] + area[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou_matrix = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return 1.0 - iou_matrix


def sample_diversity(samples: np.ndarray) -> float:
    """E[d(S, S')] over distinct pairs of NxHxW bool samples; 0 for fewer than two."""
    n = len(samples)
    if n < 2:
        return 0.0
    d = pairwise_distances(samples)
    return float((d.sum() - np.trace(d)) / (n * (n - 1)))


def ged(samples: np.ndarray, reference: np.ndarray | None = None) -> float:
    """Generalized Energy Distance of NxHxW bool samples.

    Without a reference: the sample term E[d(S, S')] alone (how much the samples disagree, 0..1),
    which is the uncertainty score shown to users. With an HxW bool reference: the full D^2_GED
    against it (0 for samples that all equal the reference; may be slightly negative, as any
    U-statistic estimate can be).
    """
    samples = np.asarray(samples, dtype=bool)
    diversity = sample_diversity(samples)
    if reference is None:
        return diversity
    reference = np.asarray(reference, dtype=bool)
    d_sy = float(np.mean([1.0 - iou(s, reference) for s in samples]))
    return 2.0 * d_sy - diversity


def consensus(samples: np.ndarray) -> np.ndarray:
    """Mean of NxHxW bool samples: HxW float32 in 0..1."""
    return np.asarray(samples, dtype=np.float32).mean(axis=0)


def variance(samples: np.ndarray) -> np.ndarray:
    """Per-pixel variance of NxHxW bool samples, HxW float32 in 0..0.25 (= p (1 - p))."""
    p = consensus(samples)
    return p * (1.0 - p)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of an HxW probability map, HxW float32 in 0..1."""
    p = np.clip(np.asarray(p, dtype=np.float32), 1e-7, 1 - 1e-7)
    h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.where((p <= 1e-7) | (p >= 1 - 1e-7), 0.0, h).astype(np.float32)


def predictive_variance(probabilities: np.ndarray, consensus_mask: np.ndarray | None = None) -> np.ndarray:
    """Variance of the lesion label under N soft samples, NxHxW float in 0..1 -> HxW float32 in
    0..0.25.

    With p_bar the mean of the samples, p_bar (1 - p_bar) = mean_i p_i (1 - p_i) + var_i p_i
    (law of total variance): what each sample is unsure of plus where the samples disagree.
    Binary samples make it the vote variance (:func:`variance`); soft ones give a continuous map.

    consensus_mask (HxW bool, e.g. after DenseCRF): where it contradicts the samples' own
    majority (p_bar on the other side of 0.5), the refinement overrode what the samples said, so
    the label is as uncertain as it can be: 0.25 there. Elsewhere the map is unchanged.
    """
    p = np.asarray(probabilities, dtype=np.float32).mean(axis=0)
    out = (p * (1.0 - p)).astype(np.float32)
    if consensus_mask is not None:
        out[np.asarray(consensus_mask, bool) != (p >= 0.5)] = 0.25
    return out


GED_LEVELS = ("low", "medium", "high")


def ged_level(value: float, cutoffs: tuple[float, float] | None) -> str | None:
    """``"low"`` below cutoffs[0], "high" at or above cutoffs[1], else "medium"; None without cut-offs
    (or for a NaN GED)."""
    if cutoffs is None or not np.isfinite(value):
        return None
    low, high = cutoffs
    if value < low:
        return "low"
    return "high" if value >= high else "medium"
