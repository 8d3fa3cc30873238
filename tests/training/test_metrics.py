"""Metric values worked out by hand on masks small enough to count."""

import itertools
import math

import numpy as np
import pytest

from lesionviewer.training import metrics


def _mask(shape, *pixels):
    mask = np.zeros(shape, dtype=bool)
    for y, x in pixels:
        mask[y, x] = True
    return mask


# prediction: 4 pixels, reference: 6 pixels, 3 shared
PRED = _mask((4, 4), (0, 0), (0, 1), (0, 2), (3, 3))
REF = _mask((4, 4), (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2))


def test_overlap_metrics_count_shared_pixels():
    assert metrics.dice(PRED, REF) == pytest.approx(2 * 3 / (4 + 6))
    assert metrics.iou(PRED, REF) == pytest.approx(3 / 7)
    assert metrics.precision(PRED, REF) == pytest.approx(3 / 4)
    assert metrics.recall(PRED, REF) == pytest.approx(3 / 6)


def test_both_masks_empty_is_a_perfect_score():
    empty = np.zeros((5, 5), bool)
    for metric in (metrics.dice, metrics.iou, metrics.precision, metrics.recall):
        assert metric(empty, empty) == 1.0


def test_missing_a_lesion_or_inventing_one_scores_zero():
    empty, lesion = np.zeros((5, 5), bool), _mask((5, 5), (2, 2))
    assert metrics.dice(empty, lesion) == 0.0
    assert metrics.precision(empty, lesion) == 0.0  # an empty prediction is not "precise"
    assert metrics.recall(lesion, empty) == 0.0
    assert metrics.iou(lesion, empty) == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.dice(np.zeros((3, 3), bool), np.zeros((3, 4), bool))


def test_thresholded_jaccard_zeroes_images_below_0_65():
    assert metrics.thresholded_jaccard([0.9, 0.64, 0.65]) == pytest.approx((0.9 + 0.0 + 0.65) / 3)
    assert math.isnan(metrics.thresholded_jaccard([]))


def test_hd95_identical_masks_is_zero():
    square = np.zeros((20, 20), bool)
    square[5:10, 5:10] = True
    assert metrics.hd95(square, square) == 0.0
    full = np.ones((8, 8), bool)
    assert metrics.hd95(full, full) == 0.0


def test_hd95_parallel_lines_three_rows_apart():
    pred = np.zeros((20, 20), bool)
    ref = np.zeros((20, 20), bool)
    pred[5, 2:7] = True
    ref[8, 2:7] = True
    assert metrics.hd95(pred, ref) == pytest.approx(3.0)


def test_hd95_is_euclidean_3_4_5():
    assert metrics.hd95(_mask((20, 20), (10, 10)), _mask((20, 20), (13, 14))) == pytest.approx(5.0)


def test_hd95_ignores_one_stray_pixel_that_the_plain_hausdorff_would_not():
    pred = np.zeros((40, 40), bool)
    pred[5:10, 5:10] = True  # 5x5 square: 16 boundary pixels
    ref = pred.copy()
    ref[35, 35] = True
    # pooled distances: 16 zeros (pred->ref) + 16 zeros and one ~36.8 (ref->pred); the 95th
    # percentile of 33 sorted values sits at position 30.4, among the zeros
    assert metrics.hd95(pred, ref) == 0.0


def test_hd95_empty_cases():
    empty, lesion = np.zeros((6, 6), bool), _mask((6, 6), (3, 3))
    assert metrics.hd95(empty, empty) == 0.0
    assert math.isnan(metrics.hd95(empty, lesion))
    assert math.isnan(metrics.hd95(lesion, empty))


def test_auroc_textbook_example():
    assert metrics.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auroc_ties_count_half():
    assert metrics.auroc([0.5, 0.5], [0, 1]) == 0.5
    # positives {2, 3} vs negatives {1, 2}: 1 + 0.5 + 1 + 1 of 4 pairs
    assert metrics.auroc([1, 2, 2, 3], [0, 1, 0, 1]) == pytest.approx(3.5 / 4)


def test_auroc_one_class_is_nan():
    assert math.isnan(metrics.auroc([0.1, 0.2], [1, 1]))


def test_auroc_matches_counting_every_pair():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 200).astype(float)  # many ties
    labels = rng.random(200) < 0.3
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(scores[labels], scores[~labels])
    ]
    assert metrics.auroc(scores, labels) == pytest.approx(np.mean(pairs))


def test_pooled_auroc_equals_exact_auroc_on_sample_variances():
    rng = np.random.default_rng(1)
    n_samples = 16
    pooled = metrics.PooledAuroc()
    all_scores, all_labels = [], []
    for _ in range(3):  # three "images"
        k = rng.integers(0, n_samples + 1, (32, 32))
        variance = (k * (n_samples - k) / n_samples**2).astype(np.float32)
        wrong = rng.random((32, 32)) < 0.1 + variance  # errors where the samples disagree
        pooled.add(variance, wrong)
        all_scores.append(variance.ravel())
        all_labels.append(wrong.ravel())
    exact = metrics.auroc(np.concatenate(all_scores), np.concatenate(all_labels))
    assert pooled.n == 3 * 32 * 32
    assert pooled.value() == pytest.approx(exact, abs=1e-12)
    assert pooled.value() > 0.6


def test_pooled_auroc_without_errors_is_nan():
    pooled = metrics.PooledAuroc()
    pooled.add(np.full((4, 4), 0.1), np.zeros((4, 4), bool))
    assert math.isnan(pooled.value())


def test_sensitivity_at_90_percent_specificity():
    negatives = np.arange(10) / 10  # 0.0 .. 0.9
    positives = np.array([0.85, 0.95, 0.5, 0.05])
    scores = np.r_[negatives, positives]
    labels = np.r_[np.zeros(10), np.ones(4)]
    # threshold 0.85 leaves 9 of 10 negatives below it and catches 0.85 and 0.95
    assert metrics.sensitivity_at_specificity(scores, labels, 0.9) == pytest.approx(0.5)
    assert metrics.sensitivity_at_specificity(scores, labels, 0.0) == 1.0
    assert math.isnan(metrics.sensitivity_at_specificity(scores, np.zeros(14)))


def test_expected_calibration_error_by_hand():
    # bin 0: p .05, 0 of 1 positive; bin 1: p .15, 1 of 1; bin 9: mean p .95, 1 of 2
    ece = metrics.expected_calibration_error([0.05, 0.15, 0.95, 0.95], [0, 1, 1, 0])
    assert ece == pytest.approx(0.25 * 0.05 + 0.25 * 0.85 + 0.5 * 0.45)


def test_expected_calibration_error_perfectly_calibrated_is_zero():
    assert metrics.expected_calibration_error([0.25] * 4, [1, 0, 0, 0]) == pytest.approx(0.0)


def test_expected_calibration_error_puts_probability_one_in_the_last_bin():
    ece = metrics.expected_calibration_error([1.0, 0.9, 0.0], [1, 1, 0])
    assert ece == pytest.approx(2 / 3 * 0.05)
