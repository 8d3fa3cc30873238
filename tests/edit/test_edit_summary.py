"""The edit summary that goes into the export sidecar."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lesionviewer.edit.mask_document import MaskDocument
from lesionviewer.edit.summary import EditSummary, mask_difference


def test_counts_strokes_per_tool_and_pixels():
    doc = MaskDocument(np.zeros((30, 30), bool))
    summary = EditSummary()
    summary.record(doc.paint_stroke([(10.5, 10.5)], 2, True))  # 13 px
    summary.record(doc.paint_stroke([(20.5, 20.5)], 1, True))  # 5 px
    summary.record(doc.paint_stroke([(10.5, 10.5)], 1, False))  # 5 px back out
    summary.record(doc.fill_polygon([(0, 0), (3, 0), (3, 3)], True))
    summary.record(None)
    d = summary.to_dict()
    assert d["strokes"] == {"brush": 2, "eraser": 1, "polygon add": 1}
    assert d["total_strokes"] == 4 and d["edited"] is True
    assert d["pixels_removed"] == 5
    assert d["pixels_added"] == 13 + 5 + doc.mask[:5, :5].sum()
    json.dumps(d)


def test_round_trips_through_a_dict_and_tolerates_old_sidecars():
    summary = EditSummary({"brush": 2}, 40, 3)
    assert EditSummary.from_dict(summary.to_dict()) == summary
    assert EditSummary.from_dict({}) == EditSummary()
    assert EditSummary.from_dict(None).edited is False


def test_revert_takes_a_step_back_out():
    doc = MaskDocument(np.zeros((10, 10), bool))
    summary = EditSummary()
    delta = doc.paint_stroke([(5, 5)], 2, True)
    summary.record(delta)
    summary.revert(delta)
    assert summary == EditSummary() and not summary.edited


def test_mask_difference_against_the_model():
    model = np.zeros((4, 4), bool)
    model[:2] = True
    edited = np.zeros((4, 4), bool)
    edited[1:3] = True
    assert mask_difference(model, edited) == {
        "pixels_added_vs_model": 4,
        "pixels_removed_vs_model": 4,
        "lesion_pixels": 8,
    }
    with pytest.raises(ValueError):
        mask_difference(model, edited[:3])
