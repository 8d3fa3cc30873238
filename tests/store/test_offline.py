"""Writes held while the store is away: kept in the journal across restarts, replayed in order,
stale saves reported as conflicts, refusals kept with their reason."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import store_helpers as h  # noqa: E402

from lesionviewer.store import CaseStore, ReviewState, StoreUnavailable
from lesionviewer.store.offline import WriteQueue


class _GoneStore:
    """The same store while its server is away: every write raises StoreUnavailable."""

    def __init__(self, store):
        self.url_for_display, self.user = store.url_for_display, store.user

    def save_mask(self, *args, **kwargs):
        raise StoreUnavailable("the case store cannot be reached (OperationalError)")

    set_state = record_analysis = save_mask


@pytest.fixture
def alice(store_url):
    with CaseStore.open(store_url, user="alice") as store:
        yield store


def test_held_writes_survive_a_restart_and_replay_in_order(alice, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    base = alice.save_mask(case.id, h.box(0, 0, 5, 5), None).version
    queue = WriteQueue(tmp_path / "journal.json")
    gone = _GoneStore(alice)
    assert queue.submit(gone, "save_mask", case_id=case.id, mask=h.box(0, 0, 9, 9),
                        parent_id=base.id) is None
    queue.set_state(gone, case.id, ReviewState.SIGNED_OFF, "looks right")
    assert len(WriteQueue(tmp_path / "journal.json").pending(alice)) == 2  # on disk
    # while something is held, a new write joins the queue even if the store answers
    assert queue.submit(alice, "record_analysis", case_id=case.id, summary=h.summary()) is None

    report = WriteQueue(tmp_path / "journal.json").flush(alice)
    assert len(report.written) == 3 and not report.conflicts and not report.refused
    assert report.remaining == 0 and queue.pending() == []
    newest = alice.latest_masks(case.id)["alice"]
    assert newest.source == "offline" and newest.parent_id == base.id
    np.testing.assert_array_equal(newest.mask, h.box(0, 0, 9, 9))
    assert alice.get_case(case.id).state is ReviewState.SIGNED_OFF
    assert queue.submit(alice, "set_state", case_id=case.id,
                        state=ReviewState.IN_REVIEW).state is ReviewState.IN_REVIEW


def test_a_held_save_on_a_stale_version_is_a_conflict_not_a_loss(alice, store_url, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    base = alice.save_mask(case.id, h.box(0, 0, 5, 5), None).version
    queue = WriteQueue(tmp_path / "journal.json")
    queue.save_mask(_GoneStore(alice), case.id, h.box(0, 0, 7, 7), base.id)
    with CaseStore.open(store_url, user="alice") as other_desk:  # saved meanwhile elsewhere
        meanwhile = other_desk.save_mask(case.id, h.box(0, 0, 6, 6), base.id).version
    report = queue.flush(alice)
    assert [c.conflict.id for c in report.conflicts] == [meanwhile.id]
    assert len(alice.history(case.id)) == 3


def test_several_held_saves_of_one_case_form_a_line(alice, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    base = alice.save_mask(case.id, h.box(0, 0, 5, 5), None).version
    queue = WriteQueue(tmp_path / "journal.json")
    gone = _GoneStore(alice)
    for size in (6, 7, 8):  # each held on the parent seen before the server went away
        queue.save_mask(gone, case.id, h.box(0, 0, size, size), base.id)
    report = queue.flush(alice)
    assert not report.conflicts and len(report.written) == 3
    first, second, third = alice.history(case.id, author="alice")[1:]
    assert [first.parent_id, second.parent_id, third.parent_id] == [base.id, first.id, second.id]
    assert list(report.version_ids.values()) == [first.id, second.id, third.id]
    assert report.newest_versions() == {case.id: third.id}


def test_a_line_of_held_saves_keeps_its_order_across_a_cut_short_flush(alice, store_url,
                                                                        tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    base = alice.save_mask(case.id, h.box(0, 0, 5, 5), None).version
    queue = WriteQueue(tmp_path / "journal.json")
    gone = _GoneStore(alice)
    for size in (6, 7):
        queue.save_mask(gone, case.id, h.box(0, 0, size, size), base.id)

    class _GoneAfterOne:  # the server answers one write, then goes away again
        url_for_display, user = alice.url_for_display, alice.user

        def __init__(self):
            self.calls = 0

        def save_mask(self, *args, **kwargs):
            self.calls += 1
            if self.calls > 1:
                raise StoreUnavailable("gone again")
            return alice.save_mask(*args, **kwargs)

    assert queue.flush(_GoneAfterOne()).remaining == 1
    with CaseStore.open(store_url, user="alice") as other_desk:  # a real conflict meanwhile
        meanwhile = other_desk.save_mask(case.id, h.box(0, 0, 3, 3), None)
    report = WriteQueue(tmp_path / "journal.json").flush(alice)  # after a restart
    first = alice.history(case.id, author="alice")[1]
    assert [c.conflict.id for c in report.conflicts] == [meanwhile.version.id]
    assert report.conflicts[0].version.parent_id == first.id  # still the line, not the base


def test_refused_writes_are_kept_with_their_reason(alice, store_url, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    alice.record_analysis(case.id, h.summary())
    queue = WriteQueue(tmp_path / "journal.json")
    with CaseStore.open(store_url, user="bob") as bob:
        queue.set_state(_GoneStore(bob), case.id, ReviewState.SIGNED_OFF)
        queue.set_state(_GoneStore(alice), case.id, ReviewState.IN_REVIEW)
        report = queue.flush(bob)
    assert len(report.refused) == 1 and "reviewer" in report.refused[0][1]
    assert queue.refused()[0]["user"] == "bob"
    assert [e["user"] for e in queue.pending()] == ["alice"]  # another user's: left alone
    assert queue.flush(alice).written and queue.pending() == []


def test_a_store_gone_mid_flush_keeps_the_rest(alice, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    queue = WriteQueue(tmp_path / "journal.json")
    gone = _GoneStore(alice)
    queue.set_state(gone, case.id, ReviewState.IN_REVIEW)
    queue.set_state(gone, case.id, ReviewState.CORRECTED)
    report = queue.flush(gone)
    assert report.remaining == 2 and not report.written and len(queue.pending()) == 2


def test_an_unreadable_journal_is_left_alone(tmp_path, alice):
    path = tmp_path / "journal.json"
    path.write_text("{ half")
    with pytest.raises(OSError, match="cannot be read"):
        WriteQueue(path).set_state(alice, 1, ReviewState.IN_REVIEW)
    assert path.read_text() == "{ half"


def test_default_journal_lives_in_the_user_data_folder(_private_user_folders):
    assert WriteQueue().path == _private_user_folders / "data" / "store-journal.json"
