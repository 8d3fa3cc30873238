"""Segmentation, uncertainty and malignancy metrics for the evaluation (numpy + cv2 only).

Masks are HxW bool (any array that ``astype(bool)`` accepts), ``pred`` the model's, ``ref`` the
expert's. Conventions for empty masks, which dermoscopy sets rarely but synthetic crops often have:

- dice, iou, precision, recall: both masks empty -> 1.0 (nothing to find, nothing found).
  A zero denominator with the other mask non-empty -> 0.0 (e.g. precision of an empty
  prediction against a real lesion: the lesion was missed, which must not score as perfect).
- hd95: both empty -> 0.0; exactly one empty -> NaN (no boundary to measure from), which the
  evaluation leaves out of the mean and counts separately.
- auroc, sensitivity_at_specificity, expected_calibration_error: NaN when either class is absent.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

ISIC_JACCARD_THRESHOLD = 0.65  # ISIC 2018 Task 1: an image with IoU below this scores 0


def _confusion(pred: np.ndarray, ref: np.ndarray) -> tuple[int, int, int]:
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, reference {ref.shape}")
    tp = int(np.count_nonzero(pred & ref))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(ref)) - tp  # tp, fp, fn


def _ratio(numerator: int, denominator: int, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return numerator / denominator


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice = 2|P∩R| / (|P| + |R|), 0..1; 1.0 when both masks are empty."""
    tp, fp, fn = _confusion(pred, ref)
    return _ratio(2 * tp, 2 * tp + fp + fn, both_empty=tp + fp + fn == 0)


def iou(pred: np.ndarray, ref: np.ndarray) -> float:
    """Jaccard index |P∩R| / |P∪R|, 0..1; 1.0 when both masks are empty."""
    tp, fp, fn = _confusion(pred, ref)
    return _ratio(tp, tp + fp + fn, both_empty=tp + fp + fn == 0)


def precision(pred: np.ndarray, ref: np.ndarray) -> float:
    """|P∩R| / |P|; 1.0 when both are empty, 0.0 when only the prediction is empty."""
    tp, fp, fn = _confusion(pred, ref)
    return _ratio(tp, tp + fp, both_empty=tp + fp + fn == 0)


def recall(pred: np.ndarray, ref: np.ndarray) -> float:
    """|P∩R| / |R| (sensitivity); 1.0 when both are empty, 0.0 when only the reference is."""
    tp, fp, fn = _confusion(pred, ref)
    return _ratio(tp, tp + fn, both_empty=tp + fp + fn == 0)


def thresholded_jaccard(ious: Sequence[float], threshold: float = ISIC_JACCARD_THRESHOLD) -> float:
    """ISIC 2018 Task 1 score: mean over images of IoU, where an IoU below ``threshold`` counts 0.

    NaN for no images.
    """
    values = np.asarray(ious, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    return float(np.where(values >= threshold, values, 0.0).mean())


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it; the image edge counts as outside."""
    eroded = cv2.erode(
        mask.astype(np.uint8),
        cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return mask & (eroded == 0)


def _distances_to(boundary: np.ndarray, from_pixels: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance (pixels) from each ``from_pixels`` pixel to ``boundary``."""
    # distanceTransform measures to the nearest zero pixel, so the boundary must be the zeros.
    field = cv2.distanceTransform(
        np.where(boundary, 0, 255).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
    )
    return field[from_pixels]


def hd95(pred: np.ndarray, ref: np.ndarray) -> float:
    """95th-percentile symmetric Hausdorff distance between the mask boundaries, in pixels.

    The distances from every prediction-boundary pixel to the reference boundary and from every
    reference-boundary pixel to the prediction boundary are pooled, and their 95th percentile
    (linear interpolation) is returned, as medpy's ``hd95`` does. 0.0 when both masks are empty,
    NaN when exactly one is.
    """
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, reference {ref.shape}")
    pred_empty, ref_empty = not pred.any(), not ref.any()
    if pred_empty and ref_empty:
        return 0.0
    if pred_empty or ref_empty:
        return float("nan")
    pred_edge, ref_edge = _boundary(pred), _boundary(ref)
    pooled = np.concatenate(
        [_distances_to(ref_edge, pred_edge), _distances_to(pred_edge, ref_edge)]
    )
    return float(np.percentile(pooled, 95))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties sharing the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], sorted_values.size]  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney rank statistic; tied scores count one half.

    scores: any real array; labels: same shape, truthy = positive. NaN when a class is absent.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = _average_ranks(scores)[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class PooledAuroc:
    """AUROC over many pixels from many images, from per-bin counts (memory independent of N).

    Scores are clipped to ``[low, high]`` and put in ``bins`` equal-width bins; scores sharing a
    bin count as tied. Per-pixel variance of N binary samples takes only the values k(N-k)/N²,
    at least 1/N² apart, so with the default 4096 bins over 0..0.25 (width 1/16384) every value
    has its own bin for N up to 128 and the result equals the exact rank AUROC.
    """

    def __init__(self, low: float = 0.0, high: float = 0.25, bins: int = 4096) -> None:
        if not high > low:
            raise ValueError("high must exceed low")
        self.low, self.high, self.bins = float(low), float(high), int(bins)
        self.positives = np.zeros(self.bins, dtype=np.int64)
        self.negatives = np.zeros(self.bins, dtype=np.int64)

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """Count one image's pixels: scores float array, labels same shape, truthy = positive."""
        scores = np.asarray(scores, dtype=np.float64).ravel()
        labels = np.asarray(labels, dtype=bool).ravel()
        if scores.shape != labels.shape:
            raise ValueError("scores and labels differ in size")
        position = (np.clip(scores, self.low, self.high) - self.low) / (self.high - self.low)
        index = np.minimum((position * self.bins).astype(np.int64), self.bins - 1)
        self.positives += np.bincount(index[labels], minlength=self.bins)
        self.negatives += np.bincount(index[~labels], minlength=self.bins)

    def merge(self, other: PooledAuroc) -> None:
        self.positives += other.positives
        self.negatives += other.negatives

    @property
    def n(self) -> int:
        return int(self.positives.sum() + self.negatives.sum())

    def value(self) -> float:
        """AUROC of everything added so far; NaN when either class is absent."""
        n_pos, n_neg = int(self.positives.sum()), int(self.negatives.sum())
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        negatives_below = np.cumsum(self.negatives) - self.negatives
        # P(score_pos > score_neg) + 0.5 P(tie), summed bin by bin in float64 (counts reach 1e9).
        wins = np.dot(self.positives.astype(np.float64), negatives_below + 0.5 * self.negatives)
        return float(wins / (float(n_pos) * float(n_neg)))


def sensitivity_at_specificity(
    scores: np.ndarray, labels: np.ndarray, specificity: float = 0.9
) -> float:
    """Highest sensitivity over thresholds t (positive = score >= t) whose specificity is at
    least ``specificity``. NaN when a class is absent."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    positives, negatives = scores[labels], scores[~labels]
    if positives.size == 0 or negatives.size == 0:
        return float("nan")
    thresholds = np.r_[np.unique(scores), np.inf]
    negatives_sorted, positives_sorted = np.sort(negatives), np.sort(positives)
    spec = np.searchsorted(negatives_sorted, thresholds, side="left") / negatives.size
    sens = 1.0 - np.searchsorted(positives_sorted, thresholds, side="left") / positives.size
    # tolerance: 0.9 of 10 negatives must count as 0.9 despite float rounding
    return float(sens[spec >= specificity - 1e-12].max())


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 10
) -> float:
    """ECE (Naeini et al. 2015; Guo et al. 2017 eq. 3) with ``bins`` equal-width bins on [0, 1].

    ECE = sum_b |B_b|/N * |fraction positive in B_b - mean probability in B_b|. Bin b holds
    probabilities in [b/bins, (b+1)/bins); 1.0 goes in the last bin. NaN when a class is absent.
    """
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), 0.0, 1.0)
    labels = np.asarray(labels, dtype=bool).ravel()
    if labels.all() or not labels.any():
        return float("nan")
    index = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    gap = np.abs(
        np.bincount(index, weights=labels.astype(np.float64), minlength=bins)
        - np.bincount(index, weights=probabilities, minlength=bins)
    )
    # |positives_b - sum p_b| / N equals |B_b|/N * |acc_b - conf_b|
    return float(gap.sum() / labels.size)
