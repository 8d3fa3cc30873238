"""Agreement among raters: pairwise Dice, GED among them, majority-vote consensus."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import store_helpers as h  # noqa: E402

from lesionviewer.engine.uncertainty import ged
from lesionviewer.store import CaseStore, Role
from lesionviewer.store.agreement import dice_from_iou, majority_vote, raters_ged


def test_dice_and_ged_reference_values():
    a, b = h.box(0, 0, 10, 10), h.box(0, 5, 10, 15)  # 100 px each, overlap 50: IoU 1/3
    assert dice_from_iou(1 / 3) == pytest.approx(0.5)
    assert raters_ged([a, b]) == pytest.approx(2 / 3)
    assert raters_ged([a, a, a]) == 0.0
    three = [a, b, h.box(0, 8, 10, 20)]
    assert raters_ged(three) == pytest.approx(ged(np.stack(three)))  # the model's measure
    empty = np.zeros_like(a)
    assert dice_from_iou(1.0) == 1.0 and raters_ged([empty, empty]) == 0.0


def test_majority_vote_takes_pixels_marked_by_at_least_half():
    a, b, c = h.box(0, 0, 10, 10), h.box(0, 5, 10, 15), h.box(0, 8, 10, 20)
    consensus = majority_vote([a, b, c])
    expected = np.zeros_like(a)
    expected[0:10, 5:15] = True  # columns 5..14 have two or three votes
    np.testing.assert_array_equal(consensus, expected)
    np.testing.assert_array_equal(majority_vote([a, b]), a | b)  # a tie counts as lesion


def test_store_agreement_over_each_raters_newest_mask(store_url, tmp_path):
    with CaseStore.open(store_url, user="ann") as ann:
        ann.grant("cy", Role.ANNOTATOR)
        case = ann.add_case(h.photo(tmp_path))
        ann.save_mask(case.id, h.box(0, 0, 40, 60), None)  # superseded below
        ann.save_mask(case.id, h.box(0, 0, 10, 10), None)
        assert ann.agreement(case.id) is None  # one rater
        with CaseStore.open(store_url, user="bo") as bo, CaseStore.open(store_url, user="cy") as cy:
            bo.save_mask(case.id, h.box(0, 5, 10, 15), None)
            cy.save_mask(case.id, h.box(0, 8, 10, 20), None)
        result = ann.agreement(case.id)
    assert result.raters == ["ann", "bo", "cy"] and result.method == "majority vote"
    assert result.pairwise_dice[("ann", "bo")] == pytest.approx(0.5)
    assert result.pairwise_dice[("ann", "cy")] == pytest.approx(2 * 20 / 220)
    assert set(result.pairwise_dice) == {("ann", "bo"), ("ann", "cy"), ("bo", "cy")}
    assert result.ged == pytest.approx(raters_ged([h.box(0, 0, 10, 10), h.box(0, 5, 10, 15),
                                                   h.box(0, 8, 10, 20)]))
    assert result.consensus.sum() == 100 and result.consensus.dtype == bool
