"""A signed-off case is read-only in the app, for every user: the editing tools are
disabled, the threshold does not replace the mask, a one-line banner says who signed it off
and how to edit it again; reopening (a reviewer) enables them, and nothing drawn is lost."""

from __future__ import annotations

import numpy as np
import pytest

from lesionviewer.app.correction.tools import EDIT_TOOLS, Tool
from lesionviewer.store import CaseStore, ReviewState

pytestmark = pytest.mark.gui


def _state(window):
    review = window.review.sync.review
    return None if review is None else review.record.state


def _editing_enabled(window) -> list[bool]:
    a = window.actions
    return [a.tools[t].isEnabled() for t in EDIT_TOOLS] + [
        a.fill_holes.isEnabled(), a.keep_largest.isEnabled(), a.reset.isEnabled()]


def _cut(cur):
    h, w = cur.editor.mask.shape
    return [(w * 0.1, h * 0.1), (w * 0.4, h * 0.1), (w * 0.4, h * 0.4), (w * 0.1, h * 0.4)]


def test_a_signed_off_case_cannot_be_edited_until_a_reviewer_reopens_it(
        reviewer_on_case, qtbot, store_url):
    window, cur = reviewer_on_case  # lead, the store's reviewer
    review = window.review
    panel = review.panel
    assert all(_editing_enabled(window)) and not review.lock.banner.isVisible()
    h, w = cur.editor.mask.shape
    cur.editor.fill_polygon(_cut(cur), value=not cur.editor.mask[int(h * 0.2), int(w * 0.2)])
    drawn = cur.editor.mask.copy()
    window.actions.tools[Tool.BRUSH].trigger()
    panel.comment.setText("checked")
    panel.sign_off.click()
    qtbot.waitUntil(lambda: _state(window) is ReviewState.SIGNED_OFF, timeout=10_000)

    assert not any(_editing_enabled(window))
    assert window.tools.tool is Tool.PAN
    assert not window.actions.undo.isEnabled()  # undo would change the signed mask too
    text = review.lock.banner.text()
    assert review.lock.banner.isVisible() and "\n" not in text
    assert text.startswith("Signed off by lead on ") and \
        text.endswith("— reopen it in the Review panel to edit")
    # nothing reaches the mask: a polygon, keep largest, reset, the threshold slider
    cur.editor.fill_polygon(_cut(cur), value=True)
    window.edit("reset_to_model")
    window.session.set_threshold(0.95)
    assert np.array_equal(cur.editor.mask, drawn)
    assert window.message_bar.level != "error" or not window.message_bar.isVisible(), \
        window.message_bar.message()

    panel.reopen.click()  # the reviewer reopens it: editing again, the drawing still there
    qtbot.waitUntil(lambda: _state(window) is ReviewState.IN_REVIEW, timeout=10_000)
    assert all(_editing_enabled(window)) and not review.lock.banner.isVisible()
    assert window.actions.undo.isEnabled()
    assert np.array_equal(cur.editor.mask, drawn)
    cur.editor.keep_largest_region()
    with qtbot.waitSignal(review.sync.committed, timeout=10_000):
        cur.editor.fill_polygon(_cut(cur), value=True)
    with CaseStore.open(store_url, user="lead") as store:
        record = store.case_for_photo(cur.case.path)
        assert [v.number for v in store.history(record.id, author="lead")] == [1, 2]


def test_an_annotator_sees_a_case_signed_off_elsewhere_read_only(
        make_window, case_folder, result_of, qtbot, store_url):
    photo = case_folder / "ISIC_0000068.jpg"
    with CaseStore.open(store_url, user="lead") as lead:
        case = lead.add_case(photo)
        lead.set_state(case.id, ReviewState.IN_REVIEW)
        lead.set_state(case.id, ReviewState.SIGNED_OFF, "done")
    window = make_window(background=False, user_name="alice")
    review = window.review
    qtbot.waitUntil(lambda: review.service.identity is not None, timeout=20_000)
    window.open_paths([photo])
    cur = result_of(window)
    qtbot.waitUntil(lambda: _state(window) is ReviewState.SIGNED_OFF, timeout=20_000)
    qtbot.waitUntil(lambda: review.lock.banner.isVisible(), timeout=5_000)
    assert review.lock.banner.text().startswith("Signed off by lead on ")
    assert not any(_editing_enabled(window))
    before = cur.editor.mask.copy()
    cur.editor.fill_polygon(_cut(cur), value=True)
    assert np.array_equal(cur.editor.mask, before) and not cur.editor.edited
