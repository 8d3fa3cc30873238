"""The uncertainty figures of `lesionviewer evaluate` and their trivial baselines, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesionviewer.training.uncertainty_eval import (
    UncertaintyTally,
    boundary_distance,
    boundary_per_area,
    spearman,
    worst_in_top_share,
)
from lesionviewer.training.uncertainty_fit import fit_cutoffs, level_table


def square(size=20, lo=5, hi=15) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[lo:hi, lo:hi] = True
    return m


def test_boundary_distance_is_zero_on_neither_side_and_grows_away_from_the_edge():
    d = boundary_distance(square())
    assert d[5, 10] == pytest.approx(1) and d[4, 10] == pytest.approx(1)  # inner and outer rim
    assert d[10, 10] > d[7, 10] > d[5, 10] and d[0, 10] > d[3, 10]
    assert (boundary_distance(np.zeros((4, 4), bool)) > 5).all()  # no boundary: far everywhere


def test_spearman_is_the_rank_correlation():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6*2 / (4*15)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_worst_share_counts_the_worst_cases_at_the_top_of_the_queue():
    dice = np.array([0.9] * 18 + [0.2, 0.3])  # n = 20: the 2 worst are the last two
    ged = np.array([0.0] * 18 + [0.5, 0.01])  # only the very worst is at the top
    ged[0] = 0.4
    assert worst_in_top_share(ged, dice) == 0.5
    assert worst_in_top_share(1 - dice, dice) == 1.0


def test_tally_scores_the_variance_against_the_boundary_baseline():
    reference = square()
    consensus = square(lo=5, hi=16)  # one row and column too many: errors on the rim only
    rim = consensus & ~reference
    perfect = np.where(rim, 0.25, 0.0).astype(np.float32)
    tally = UncertaintyTally()
    tally.add(consensus, perfect, reference, ged_samples=0.1)
    figures = tally.figures()
    assert figures["variance_error_auroc"] == pytest.approx(1.0)
    assert 0.5 < figures["boundary_distance_auroc"] < 1.0  # the whole rim is near the boundary
    assert figures["variance_auroc_margin"] == pytest.approx(1.0 - figures["boundary_distance_auroc"])
    assert figures["worst10_in_top10_random"] == 0.1 and figures["n"] == 1


def test_outline_per_area_is_larger_for_smaller_masks():
    assert boundary_per_area(square(lo=8, hi=12)) > boundary_per_area(square()) > 0
    assert boundary_per_area(np.zeros((5, 5), bool)) == 0.0


def test_ged_cutoffs_are_quantiles_and_levels_carry_their_dice():
    ged = np.linspace(0, 1, 11)
    low, high = fit_cutoffs(ged, 0.5, 0.9)
    assert (low, high) == (0.5, 0.9)
    table = level_table(ged, np.linspace(1, 0, 11), (low, high))
    assert [table[k]["n"] for k in ("low", "medium", "high")] == [5, 4, 2]
    assert table["low"]["dice_mean"] > table["medium"]["dice_mean"] > table["high"]["dice_mean"]
