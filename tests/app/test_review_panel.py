"""The Review panel: a case opened in the app is in the case store; its state moves with the
panel's buttons; sign-off needs the reviewer role (an annotator sees it disabled, with the
reason; a role granted while the app runs is taken on its next read) and keeps the comment;
who drew the mask and the audit trail are shown."""

from __future__ import annotations

import pytest

from lesionviewer.store import CaseStore, ReviewState, Role

pytestmark = pytest.mark.gui


def _review_state(window):
    review = window.review.sync.review
    return None if review is None else review.record.state


def test_moves_and_sign_off_need_the_reviewer_role(make_window, case_folder, result_of, qtbot,
                                                    store_url):
    window = make_window(background=False, user_name="alice")
    review = window.review
    qtbot.waitUntil(lambda: review.service.identity is not None, timeout=20_000)
    assert review.service.identity.user == "alice"
    assert review.service.identity.role is Role.ANNOTATOR
    assert "alice (annotator)" in review.user_label.text()  # in the status bar
    review.show_panel.trigger()  # Review > Review panel
    qtbot.waitUntil(lambda: review.dock.isVisible(), timeout=2_000)

    window.open_paths([case_folder])
    cur = result_of(window)
    panel = review.panel
    qtbot.waitUntil(lambda: _review_state(window) is ReviewState.ANALYSED, timeout=20_000)
    assert cur.case.review_state == "analysed"  # in the case list too
    assert "the model" in panel.drawn_by.text()
    # an annotator: sign-off is there but disabled, and the panel says why
    assert panel.sign_off.isVisible() and not panel.sign_off.isEnabled()
    assert "reviewer role" in panel.permission.text() and panel.permission.isVisible()
    assert not review.move_actions[ReviewState.SIGNED_OFF.value].isEnabled()

    panel.move_buttons[ReviewState.IN_REVIEW.value].click()  # "Start review"
    qtbot.waitUntil(lambda: _review_state(window) is ReviewState.IN_REVIEW, timeout=10_000)
    assert "in review (by alice" in panel.state.text()
    assert any("set state" in panel.audit.item(i).text() for i in range(panel.audit.count()))

    # the store's reviewer makes alice a reviewer too: her app takes the role on its next read
    with CaseStore.open(store_url, user="lead") as lead:
        lead.grant("alice", Role.REVIEWER)
    window.review.sync.refresh()
    qtbot.waitUntil(lambda: review.service.identity.role is Role.REVIEWER, timeout=10_000)
    qtbot.waitUntil(lambda: panel.sign_off.isEnabled(), timeout=10_000)
    assert not panel.permission.isVisible() and "alice (reviewer)" in review.user_label.text()
    panel.comment.setText("border checked against dermoscopy")
    panel.sign_off.click()
    qtbot.waitUntil(lambda: _review_state(window) is ReviewState.SIGNED_OFF, timeout=10_000)
    assert "signed off (by alice" in panel.state.text()
    assert "border checked against dermoscopy" in panel.state.text()
    assert panel.reopen.isVisible() and panel.reopen.isEnabled()
    qtbot.waitUntil(lambda: cur.case.review_state == "signed off", timeout=5_000)

    with CaseStore.open(store_url, user="lead") as store:  # what the store itself holds
        record = store.case_for_photo(cur.case.path)
        assert record.state is ReviewState.SIGNED_OFF and record.state_by == "alice"
        assert record.state_comment == "border checked against dermoscopy"
        actions = [(e["user"], e["action"]) for e in store.audit(record.id)]
        assert ("alice", "record analysis") in actions and ("alice", "set state") in actions
        assert [a for a in actions if a == ("alice", "set state")] == [("alice", "set state")] * 2


def test_the_review_panel_is_a_dock_beside_the_result_and_is_remembered(make_window, qtbot,
                                                                        store_url):
    window = make_window(model_dir=None, wait_model=False)
    review = window.review
    assert not review.dock.isVisible()  # closed until asked for: the photo keeps its room
    assert review.show_panel in review.menu.actions()
    review.show_panel.trigger()
    qtbot.waitUntil(lambda: review.dock.isVisible(), timeout=2_000)
    assert window.tabifiedDockWidgets(review.dock) == [window.docks.panel_dock]
    review.dock.setFloating(True)
    window.docks.reset_action.trigger()  # View > Reset panel layout: a tab beside Result again
    assert not review.dock.isFloating()
    assert window.tabifiedDockWidgets(review.dock) == [window.docks.panel_dock]
    review.dock.raise_()
    window.close()

    again = make_window(model_dir=None, wait_model=False)
    qtbot.waitUntil(lambda: again.review.dock.isVisible(), timeout=2_000)  # open last time


def test_signing_off_right_after_an_edit_signs_off_that_edit(reviewer_on_case, qtbot,
                                                             store_url):
    window, cur = reviewer_on_case  # lead, the store's reviewer
    review = window.review
    panel = review.panel
    h, w = cur.editor.mask.shape
    cut = [(w * 0.1, h * 0.1), (w * 0.4, h * 0.1), (w * 0.4, h * 0.4), (w * 0.1, h * 0.4)]
    cur.editor.fill_polygon(cut, value=not cur.editor.mask[int(h * 0.2), int(w * 0.2)])
    assert cur.editor.edited
    panel.comment.setText("checked")
    panel.sign_off.click()  # within the commit delay of the edit
    qtbot.waitUntil(lambda: _review_state(window) is ReviewState.SIGNED_OFF, timeout=10_000)
    assert window.message_bar.level != "error" or not window.message_bar.isVisible(), \
        window.message_bar.message()
    with CaseStore.open(store_url, user="lead") as store:
        record = store.case_for_photo(cur.case.path)
        assert record.state is ReviewState.SIGNED_OFF
        (version,) = store.history(record.id, author="lead")  # the edit, saved before it
        assert (version.mask == cur.editor.mask).all()
