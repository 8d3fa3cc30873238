"""Undo/redo: at least 100 steps, bounded memory, and an honest "unsaved changes" flag."""

from __future__ import annotations

import numpy as np
import pytest

from lesionviewer.edit.history import EditHistory
from lesionviewer.edit.mask_document import MaskDocument


def _paint(doc, history, x, value=True, radius=1):
    history.push(doc.paint_stroke([(x + 0.5, 5.5)], radius, value))


def test_undo_redo_walks_back_and_forth_through_150_strokes():
    doc = MaskDocument(np.zeros((11, 400), bool))
    history = EditHistory(doc)
    snapshots = [doc.mask.copy()]
    for i in range(150):
        _paint(doc, history, 2 * i + 1)
        snapshots.append(doc.mask.copy())
    assert history.undo_count == 150
    for i in range(150, 0, -1):
        assert history.undo() is not None
        np.testing.assert_array_equal(doc.mask, snapshots[i - 1])
    assert history.undo() is None and not history.can_undo
    for i in range(1, 151):
        history.redo()
        np.testing.assert_array_equal(doc.mask, snapshots[i])
    assert history.redo() is None and not history.can_redo


def test_new_edit_after_undo_discards_redo():
    doc = MaskDocument(np.zeros((11, 40), bool))
    history = EditHistory(doc)
    _paint(doc, history, 3)
    _paint(doc, history, 10)
    history.undo()
    assert history.can_redo and history.redo_label == "brush"
    _paint(doc, history, 20, value=True)
    assert not history.can_redo and history.undo_count == 2
    assert history.undo_label == "brush"


def test_nothing_changed_is_not_a_step():
    doc = MaskDocument(np.zeros((11, 40), bool))
    history = EditHistory(doc)
    _paint(doc, history, 3, value=False)  # erasing empty mask changes nothing
    assert history.undo_count == 0 and history.is_clean()


def test_step_limit_drops_the_oldest():
    doc = MaskDocument(np.zeros((11, 400), bool))
    history = EditHistory(doc, max_steps=100)
    for i in range(130):
        _paint(doc, history, 3 * i + 1)
    assert history.undo_count == 100
    while history.undo():
        pass
    assert doc.mask[:, : 3 * 30].any()  # the 30 oldest strokes can no longer be undone
    assert not doc.mask[:, 3 * 30 + 2 :].any()


def test_memory_cap_drops_the_oldest_but_keeps_the_newest():
    doc = MaskDocument(np.zeros((200, 200), bool))
    history = EditHistory(doc, max_bytes=30_000)
    square = [(0, 0), (200, 0), (200, 200), (0, 200)]
    for value in (True, False, True, False, True):
        history.push(doc.fill_polygon(square, value))  # each step: 2 x 5000 bytes packed
    assert history.nbytes <= 30_000
    assert history.undo_count == 2
    big = EditHistory(doc, max_bytes=100)
    big.push(doc.fill_polygon(square, False))
    assert big.undo_count == 1  # the newest step stays, so Undo still works
    big.undo()
    assert doc.mask.all()


def test_clean_tracking_knows_about_unsaved_changes():
    doc = MaskDocument(np.zeros((11, 40), bool))
    history = EditHistory(doc)
    assert history.is_clean()
    _paint(doc, history, 3)
    assert not history.is_clean()
    history.set_clean()  # saved
    _paint(doc, history, 10)
    assert not history.is_clean()
    history.undo()
    assert history.is_clean()  # back at the saved state
    history.undo()
    assert not history.is_clean()
    history.redo()
    assert history.is_clean()
    history.undo()
    _paint(doc, history, 30)  # the saved state is now on a discarded branch
    assert not history.is_clean()
    history.undo()
    assert not history.is_clean()


def test_clean_state_dropped_by_the_cap_can_never_be_clean_again():
    doc = MaskDocument(np.zeros((11, 400), bool))
    history = EditHistory(doc, max_steps=3)
    for i in range(5):
        _paint(doc, history, 5 * i + 1)
    while history.undo():
        pass
    assert not history.is_clean()  # the mask still differs from the (empty) saved one
    history.clear()
    assert history.is_clean() and history.nbytes == 0


def test_summary_follows_undo_and_redo():
    doc = MaskDocument(np.zeros((11, 40), bool))
    history = EditHistory(doc)
    _paint(doc, history, 5, radius=2)
    _paint(doc, history, 5, value=False, radius=1)
    assert history.summary.strokes == {"brush": 1, "eraser": 1}
    history.undo()
    assert history.summary.strokes == {"brush": 1} and history.summary.pixels_removed == 0
    history.redo()
    assert history.summary.pixels_removed > 0


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        EditHistory(MaskDocument(np.zeros((2, 2), bool)), max_steps=0)
