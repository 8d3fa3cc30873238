"""Several raters in the app: an edit is in the case store within 2 s (beside the sidecar), two
raters' masks are drawn as outlines in their own pens and named in the legend, a save made
meanwhile by another store client is surfaced as a conflict with both versions kept, and the
case list filters and sorts by review state and rater."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from lesionviewer.app.views.case_list import CASE_ROLE, RATER_QUEUE
from lesionviewer.app.correction.tools import Tool
from lesionviewer.store import CaseStore, ReviewState

pytestmark = pytest.mark.gui
CASE = "ISIC_0000068"
COMMIT_WAIT_MS = 1500  # past the app's commit delay (1 s)


@pytest.fixture
def store_url(app_home, monkeypatch):
    monkeypatch.delenv("LESIONVIEWER_DB", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    return f"sqlite:///{app_home / 'data' / 'cases.sqlite'}"


def _reference(case_folder, case=CASE) -> np.ndarray:
    return np.asarray(Image.open(case_folder / f"{case}_mask.png").convert("L")) > 127


def _paint(window, cur, mouse_drag, row: float = 0.5):
    """Erase a row across the photo's middle and paint part of it back: whatever the model's
    mask was, the mask then differs from it (and from the mask before)."""
    h, w = cur.editor.mask.shape
    before = cur.editor.mask.copy()
    points = [(w * (0.2 + 0.06 * t), h * row) for t in range(11)]
    window.actions.tools[Tool.ERASER].trigger()
    mouse_drag(window, points)
    window.actions.tools[Tool.BRUSH].trigger()
    mouse_drag(window, points[:3])
    assert cur.editor.edited and not np.array_equal(before, cur.editor.mask)


def _open_case(window, case_folder, result_of, qtbot, case=CASE):
    qtbot.waitUntil(lambda: window.review.service.identity is not None, timeout=20_000)
    window.open_paths([case_folder / f"{case}.jpg"])
    cur = result_of(window)
    qtbot.waitUntil(lambda: window.review.sync.review is not None, timeout=20_000)
    return cur


def test_an_edit_is_in_the_store_within_two_seconds_and_both_raters_are_outlined(
        make_window, case_folder, result_of, mouse_drag, qtbot, store_url):
    with CaseStore.open(store_url, user="expert") as store:  # the expert's mask, first
        record = store.add_case(case_folder / f"{CASE}.jpg")
        store.save_mask(record.id, _reference(case_folder), parent_id=None)
    window = make_window(background=False, user_name="alice")
    cur = _open_case(window, case_folder, result_of, qtbot)
    review = window.review
    assert [v.author for v in review.sync.review.versions] == ["expert"]

    with qtbot.waitSignal(review.sync.committed, timeout=10_000) as committed:
        _paint(window, cur, mouse_drag)
        edited_at = time.monotonic()
    elapsed = time.monotonic() - edited_at
    assert elapsed < 2.0 + 1.0, f"commit took {elapsed:.2f} s after the edit"  # 1 s margin
    result = committed.args[0]
    assert result.version.author == "alice" and result.conflict is None
    with CaseStore.open(store_url, user="expert") as store:
        stored = store.latest_masks(record.id)["alice"].mask
    np.testing.assert_array_equal(stored, cur.editor.mask)  # the mask on screen, in the store
    qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=10_000)  # and the sidecar as before
    assert (case_folder / f"{CASE}.jpg.lesionviewer.json").exists()

    qtbot.waitUntil(lambda: len(review.sync.review.versions) == 2, timeout=10_000)
    assert "alice" in review.panel.drawn_by.text() and "version 1" in review.panel.drawn_by.text()
    assert review.panel.raters.rowCount() == 2
    assert "Dice alice–expert" in review.panel.agreement.text()
    assert cur.case.raters == ("alice", "expert")

    review.compare.trigger()  # Review > Compare raters
    assert review.panel.compare.isChecked()
    items = [item for item in review.overlay._items if item.isVisible()]
    assert len(items) == 2 and all(not item.path().isEmpty() for item in items)
    pens = {(item.pen().color().name(), item.pen().style()) for item in items}
    assert len(pens) == 2  # a colour and a dash pattern of its own each
    labels = window.legend.labels()
    assert "alice (version 1)" in labels and "expert (version 1)" in labels
    review.compare.trigger()
    assert not any(item.isVisible() for item in review.overlay._items)
    assert "alice (version 1)" not in window.legend.labels()


def test_a_save_made_meanwhile_elsewhere_is_a_conflict_and_both_are_kept(
        make_window, case_folder, result_of, mouse_drag, qtbot, store_url):
    window = make_window(background=False, user_name="alice")
    cur = _open_case(window, case_folder, result_of, qtbot)
    sync = window.review.sync
    # alice saves this case from another lesionviewer (another store client) meanwhile
    with CaseStore.open(store_url, user="alice") as other:
        case_id = other.case_for_photo(cur.case.path).id
        elsewhere = other.save_mask(case_id, _reference(case_folder), parent_id=None).version

    with qtbot.waitSignal(sync.committed, timeout=10_000) as committed:
        _paint(window, cur, mouse_drag)
    result = committed.args[0]
    assert result.conflict is not None and result.conflict.id == elsewhere.id
    qtbot.waitUntil(lambda: "Both are kept" in window.message_bar.message(), timeout=5_000)
    assert window.message_bar.level == "warning"
    with CaseStore.open(store_url, user="alice") as store:
        versions = store.history(case_id, author="alice")
    assert [v.id for v in versions] == [elsewhere.id, result.version.id]  # nothing overwritten
    np.testing.assert_array_equal(versions[0].mask, _reference(case_folder))

    # the message's button switches on the comparison
    buttons = window.message_bar._buttons
    assert [b.text() for b in buttons] == ["Compare raters"]
    buttons[0].click()
    assert window.review.compare.isChecked()
    # both of alice's versions are outlined: the one saved elsewhere is no longer her newest
    qtbot.waitUntil(lambda: len(window.review.overlay.outlines) == 2, timeout=10_000)
    labels = window.legend.labels()
    assert "alice (version 1)" in labels and "alice (version 2)" in labels

    # the next edit follows the app's own version: no second conflict
    with qtbot.waitSignal(sync.committed, timeout=10_000) as again:
        _paint(window, cur, mouse_drag, row=0.3)
    assert again.args[0].conflict is None


def test_the_case_list_filters_and_sorts_by_review_state_and_rater(
        make_window, case_folder, qtbot, store_url, monkeypatch):
    other_case = "ISIC_0024311"
    asked, queue_rows = [], CaseStore.queue_rows

    def whole_queue(*args, **kwargs):
        raise AssertionError("the app reads the rows of its listed cases, not the whole queue")

    def rows_of(store, case_ids, rater=None):
        asked.append((sorted(case_ids), rater))
        return queue_rows(store, case_ids, rater=rater)

    monkeypatch.setattr(CaseStore, "review_queue", whole_queue)
    monkeypatch.setattr(CaseStore, "queue_rows", rows_of)
    with CaseStore.open(store_url, user="lead") as lead:  # lead: the store's reviewer
        a = lead.add_case(case_folder / f"{CASE}.jpg")
        b = lead.add_case(case_folder / f"{other_case}.jpg")
        lead.set_state(a.id, ReviewState.IN_REVIEW)
        ref = _reference(case_folder, other_case)
        lead.save_mask(b.id, ref, parent_id=None)
    with CaseStore.open(store_url, user="bob") as bob:
        shifted = np.roll(ref, ref.shape[1] // 4, axis=1)  # bob disagrees with lead
        bob.save_mask(b.id, shifted, parent_id=None)
    window = make_window(background=False, user_name="alice")
    qtbot.waitUntil(lambda: window.review.service.identity is not None, timeout=20_000)
    window.open_paths([case_folder])
    cases = window.session.cases
    qtbot.waitUntil(lambda: all(c.review_state for c in cases.cases), timeout=20_000)
    proxy = window.case_list.proxy

    def shown():
        return [proxy.index(r, 0).data(CASE_ROLE).case_id for r in range(proxy.rowCount())]

    window.review.filter.set_filter(state="in review")
    assert shown() == [CASE]
    window.review.filter.set_filter(state="corrected")
    assert shown() == [other_case]
    window.review.filter.set_filter(rater="bob")  # asks the store which cases bob drew
    qtbot.waitUntil(lambda: shown() == [other_case], timeout=10_000)
    window.review.filter.set_filter()
    assert sorted(shown()) == sorted([CASE, other_case])
    assert asked == [([a.id, b.id], "bob")]

    window.review.sort_by_disagreement()  # Review > Review queue: raters disagree most
    assert window.case_list.sort_combo.currentText() == RATER_QUEUE
    qtbot.waitUntil(lambda: cases.find(case_folder / f"{other_case}.jpg").disagreement
                    is not None, timeout=10_000)
    qtbot.waitUntil(lambda: shown() == [other_case, CASE], timeout=5_000)
    assert asked[1:] == [([a.id, b.id], None)]
    window.case_list.set_sort("Review state")
    qtbot.waitUntil(lambda: shown() == [CASE, other_case], timeout=5_000)  # in review first


def test_quitting_right_after_an_edit_still_commits_it(make_window, case_folder, result_of,
                                                       mouse_drag, qtbot, store_url):
    window = make_window(background=False, user_name="alice")
    cur = _open_case(window, case_folder, result_of, qtbot)
    _paint(window, cur, mouse_drag)
    mask = cur.editor.mask.copy()
    window.close()  # before the commit delay is up: the edit goes to the store while quitting
    with CaseStore.open(store_url, user="alice") as store:
        record = store.case_for_photo(case_folder / f"{CASE}.jpg")
        np.testing.assert_array_equal(store.latest_masks(record.id)["alice"].mask, mask)


def test_edits_saved_before_the_store_existed_are_taken_in(make_window, case_folder, qtbot,
                                                           store_url):
    from lesionviewer.io.hashing import content_hash
    from lesionviewer.io.sidecar import CaseSidecar, save_sidecar

    photo = case_folder / f"{CASE}.jpg"
    earlier = _reference(case_folder)  # a sidecar autosave from before this version
    save_sidecar(CaseSidecar(image_file_name=photo.name, content_hash=content_hash(photo),
                             model_id=None, edited_mask=earlier, roi=None, threshold=None,
                             edit_summary={}, status="edited", analysis_summary=None), photo)
    window = make_window(background=False, user_name="alice")
    qtbot.waitUntil(lambda: window.review.service.identity is not None, timeout=20_000)
    window.open_paths([case_folder])
    case = window.session.cases.find(photo)
    qtbot.waitUntil(lambda: case.review_state is not None, timeout=20_000)
    with CaseStore.open(store_url, user="alice") as store:
        record = store.case_for_photo(photo)
        versions = store.history(record.id)
    assert [(v.author, v.source) for v in versions] == [("alice", "sidecar")]
    np.testing.assert_array_equal(versions[0].mask, earlier)
    other = window.session.cases.find(case_folder / "ISIC_0024311.jpg")  # no sidecar: nothing
    qtbot.waitUntil(lambda: other.review_state is not None, timeout=20_000)
    with CaseStore.open(store_url, user="alice") as store:
        assert store.history(store.case_for_photo(other.path).id) == []


def test_the_threshold_moving_the_models_mask_is_not_a_raters_version(
        make_window, case_folder, result_of, mouse_drag, qtbot, store_url):
    window = make_window(background=False, user_name="alice")
    cur = _open_case(window, case_folder, result_of, qtbot)
    sync = window.review.sync
    # what the threshold slider does to an unedited mask (the tiny model's consensus is all
    # 1.0, so the slider itself would change nothing): the model's mask is replaced
    before = cur.editor.mask.copy()
    moved = before.copy()
    moved[: moved.shape[0] // 3] = ~moved[: moved.shape[0] // 3]
    cur.editor.replace_model_mask(moved, keep_edits=False)
    assert not cur.editor.edited and not np.array_equal(before, cur.editor.mask)
    assert not sync._dirty and not sync._commit_timer.isActive()  # nothing to commit
    qtbot.wait(COMMIT_WAIT_MS)  # longer than the commit delay: nothing was sent
    window.review.service.wait()
    with CaseStore.open(store_url, user="alice") as store:
        record = store.case_for_photo(cur.case.path)
        assert store.history(record.id) == [] and record.state is ReviewState.ANALYSED
    with qtbot.waitSignal(sync.committed, timeout=10_000):  # an edit is, as before
        _paint(window, cur, mouse_drag)
