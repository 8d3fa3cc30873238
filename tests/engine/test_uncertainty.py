"""IoU, GED (Kohl et al. 2018 eq. 5 with d = 1 - IoU), consensus, variance and entropy."""

from __future__ import annotations

import numpy as np
import pytest

from lesionviewer.engine.uncertainty import (
    binary_entropy,
    consensus,
    ged,
    ged_level,
    iou,
    pairwise_distances,
    predictive_variance,
    sample_diversity,
    variance,
)


def masks(*rows: str) -> np.ndarray:
    """'1100' -> a 1x4 bool mask; several rows -> a stack of them."""
    return np.stack([np.array([[c == "1" for c in row]]) for row in rows])


def test_iou_of_hand_made_masks():
    a, b, empty = masks("1100", "0110", "0000")
    assert iou(a, b) == pytest.approx(1 / 3)
    assert iou(a, a) == 1.0
    assert iou(empty, empty) == 1.0  # two empty masks agree perfectly
    assert iou(a, empty) == 0.0


def test_two_empty_masks_are_at_distance_zero():
    assert ged(masks("0000", "0000")) == 0.0
    assert ged(masks("0000", "0000"), reference=masks("0000")[0]) == 0.0


def test_identical_samples_have_no_diversity():
    assert ged(masks("0110", "0110", "0110")) == 0.0
    assert ged(masks("0110", "0110"), reference=masks("0110")[0]) == 0.0


def test_disjoint_samples_are_at_distance_one():
    assert ged(masks("1100", "0011")) == 1.0


def test_one_sample_has_no_diversity():
    assert ged(masks("1010")) == 0.0


def test_ged_with_a_reference_follows_kohl_eq5_by_hand():
    # S1 = 1000, S2 = 1100, Y = 1111:
    # d(S1,S2) = 1 - 1/2 = 1/2; d(S1,Y) = 3/4; d(S2,Y) = 1/2.
    # D^2 = 2 * mean(3/4, 1/2) - 1/2 - 0 = 3/4.
    samples = masks("1000", "1100")
    reference = masks("1111")[0]
    assert ged(samples, reference) == pytest.approx(0.75)
    # Add S3 = 0000: d(S1,S3) = d(S2,S3) = d(S3,Y) = 1.
    # E[d(S,S')] = (1/2 + 1 + 1) / 3 = 5/6; E[d(S,Y)] = (3/4 + 1/2 + 1) / 3 = 3/4.
    samples = masks("1000", "1100", "0000")
    assert sample_diversity(samples) == pytest.approx(5 / 6)
    assert ged(samples, reference) == pytest.approx(2 * 0.75 - 5 / 6)
    assert ged(samples) == pytest.approx(5 / 6)


def test_pairwise_distances_agree_with_iou_one_pair_at_a_time():
    rng = np.random.default_rng(0)
    samples = rng.random((5, 9, 11)) < 0.4
    samples[3] = False
    samples[4] = False
    d = pairwise_distances(samples)
    for i in range(5):
        for j in range(5):
            assert d[i, j] == pytest.approx(1 - iou(samples[i], samples[j]), abs=1e-6)


def test_consensus_and_variance_of_sample_masks():
    samples = masks("1100", "1000", "1110", "1000")
    p = consensus(samples)
    np.testing.assert_allclose(p[0], [1.0, 0.5, 0.25, 0.0])
    v = variance(samples)
    assert v.dtype == np.float32
    np.testing.assert_allclose(v[0], [0.0, 0.25, 0.1875, 0.0])


def test_variance_peaks_at_a_quarter_where_samples_split_evenly():
    rng = np.random.default_rng(1)
    v = variance(rng.random((8, 20, 20)) < 0.5)
    assert v.max() <= 0.25 + 1e-7
    even = variance(masks("1", "0", "1", "0"))
    assert even[0, 0] == pytest.approx(0.25)


def test_entropy_is_one_bit_at_one_half_and_zero_when_certain():
    h = binary_entropy(np.array([[0.0, 0.5, 1.0, 0.25, 0.75]]))
    assert h.dtype == np.float32
    assert h[0, 1] == pytest.approx(1.0)
    assert h[0, 0] == 0.0 and h[0, 2] == 0.0
    expected = -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75))
    assert h[0, 3] == pytest.approx(expected, abs=1e-6) and h[0, 4] == pytest.approx(expected, abs=1e-6)


def test_predictive_variance_of_binary_samples_is_the_vote_variance():
    binary = masks("1100", "1000", "1110", "0000")
    np.testing.assert_allclose(predictive_variance(binary), variance(binary), atol=1e-7)


def test_predictive_variance_adds_what_samples_are_unsure_of_to_where_they_disagree():
    # Two soft samples, 0.2 and 0.6 at one pixel: mean 0.4, so 0.4 * 0.6 = 0.24, which is
    # mean p(1-p) = (0.16 + 0.24) / 2 = 0.20 plus var p = 0.04 (law of total variance).
    soft = np.array([[[0.2]], [[0.6]]], np.float32)
    assert predictive_variance(soft)[0, 0] == pytest.approx(0.24, abs=1e-6)
    # Samples that agree on 0.5 are as uncertain as can be, though they do not disagree at all.
    assert predictive_variance(np.full((3, 1, 1), 0.5, np.float32))[0, 0] == pytest.approx(0.25)
    assert predictive_variance(soft).dtype == np.float32


def test_ged_level_follows_the_fitted_cutoffs():
    cutoffs = (0.05, 0.2)
    assert [ged_level(g, cutoffs) for g in (0.0, 0.0499, 0.05, 0.1999, 0.2, 1.0)] == \
        ["low", "low", "medium", "medium", "high", "high"]
    assert ged_level(0.1, None) is None  # a model without fitted cut-offs says nothing
    assert ged_level(float("nan"), cutoffs) is None


def test_predictive_variance_is_maximal_where_the_consensus_overrides_the_samples():
    soft = np.array([[[0.1, 0.3, 0.8]], [[0.1, 0.1, 0.6]]], np.float32)  # means 0.1, 0.2, 0.7
    refined = np.array([[False, True, True]])  # the CRF took the middle pixel against the samples
    out = predictive_variance(soft, refined)
    np.testing.assert_allclose(out[0], [0.09, 0.25, 0.21], atol=1e-6)
