"""The case store on both backends: cases, analyses, mask versions, review state, roles, queue,
audit. Every test runs on SQLite and on a real PostgreSQL server (``store_url``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import store_helpers as h  # noqa: E402

from lesionviewer.store import (CaseStore, PermissionDenied, ReviewError, ReviewState, Role,
                                StoreUnavailable)


@pytest.fixture
def alice(store_url):
    with CaseStore.open(store_url, user="alice") as store:
        yield store


@pytest.fixture
def bob(store_url, alice):
    with CaseStore.open(store_url, user="bob") as store:
        yield store


def test_first_user_is_reviewer_later_ones_annotators(alice, bob, store_url):
    assert alice.role is Role.REVIEWER and bob.role is Role.ANNOTATOR
    with pytest.raises(PermissionDenied):
        CaseStore.open(store_url, user="bob", role=Role.REVIEWER)
    with CaseStore.open(store_url, user="alice", role=Role.ANNOTATOR) as as_annotator:
        assert as_annotator.role is Role.ANNOTATOR  # a reviewer may act as an annotator
    with pytest.raises(PermissionDenied):
        bob.grant("carol", Role.REVIEWER)
    alice.grant("bob", Role.REVIEWER)
    with CaseStore.open(store_url, user="bob") as again:
        assert again.role is Role.REVIEWER


def test_add_case_is_idempotent_by_content_and_follows_a_moved_photo(alice, tmp_path):
    photo = h.photo(tmp_path / "a")
    case = alice.add_case(photo, {"diagnosis": "nevus"})
    assert (case.state, case.width, case.height) == (ReviewState.NEW, h.W, h.H)
    assert case.labels == {"diagnosis": "nevus"} and len(case.content_sha256) == 64
    assert alice.add_case(photo) == case  # same bytes, same place: nothing changes
    moved = tmp_path / "b" / "moved.png"
    moved.parent.mkdir()
    photo.rename(moved)
    again = alice.add_case(moved, {"site": "back"})
    assert again.id == case.id and again.photo_uri == moved.resolve().as_posix()
    assert again.labels == {"diagnosis": "nevus", "site": "back"}
    assert alice.case_for_photo(moved).id == case.id
    assert alice.case_for_photo(h.photo(tmp_path, "other.png", seed=1)) is None
    with pytest.raises(KeyError):
        alice.get_case(case.id + 100)


def test_record_analysis_moves_new_to_analysed_and_feeds_the_queue(alice, tmp_path):
    a = alice.add_case(h.photo(tmp_path, "a.png", 1))
    b = alice.add_case(h.photo(tmp_path, "b.png", 2))
    c = alice.add_case(h.photo(tmp_path, "c.png", 3))
    alice.record_analysis(a.id, h.summary(ged=0.30))
    alice.record_analysis(b.id, h.summary(ged=0.05, withheld="photo unlike the training data"))
    assert alice.get_case(a.id).state is ReviewState.ANALYSED
    queue = alice.review_queue()
    # withheld first whatever its GED, then highest GED, then never analysed
    assert [r.case_id for r in queue] == [b.id, a.id, c.id]
    assert queue[0].malignancy is None and queue[1].malignancy == pytest.approx(0.3)
    assert queue[1].ged == pytest.approx(0.30) and queue[2].ged is None
    assert [r.case_id for r in alice.review_queue(state=ReviewState.NEW)] == [c.id]
    assert [r.case_id for r in alice.review_queue(limit=1, offset=1)] == [a.id]


def test_save_mask_keeps_every_version_and_moves_to_corrected(alice, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    first = alice.save_mask(case.id, h.box(5, 5, 20, 30), None)
    second = alice.save_mask(case.id, h.box(5, 5, 25, 30), first.version.id)
    assert first.conflict is None and second.conflict is None
    assert [v.number for v in alice.history(case.id)] == [1, 2]
    assert second.version.parent_id == first.version.id and second.version.author == "alice"
    latest = alice.latest_masks(case.id)
    assert list(latest) == ["alice"] and latest["alice"].id == second.version.id
    np.testing.assert_array_equal(latest["alice"].mask, h.box(5, 5, 25, 30))
    np.testing.assert_array_equal(alice.history(case.id)[0].mask, h.box(5, 5, 20, 30))
    assert alice.get_case(case.id).state is ReviewState.CORRECTED
    with pytest.raises(ValueError, match="mask is"):
        alice.save_mask(case.id, np.zeros((10, 10), bool), second.version.id)


def test_two_programs_of_one_user_saving_on_one_parent_keep_both(alice, store_url, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    base = alice.save_mask(case.id, h.box(0, 0, 10, 10), None).version
    with CaseStore.open(store_url, user="alice") as laptop:
        on_laptop = laptop.save_mask(case.id, h.box(0, 0, 20, 20), base.id)
    stale = alice.save_mask(case.id, h.box(0, 0, 30, 30), base.id)
    assert on_laptop.conflict is None
    assert stale.conflict is not None and stale.conflict.id == on_laptop.version.id
    assert len(alice.history(case.id)) == 3  # nothing overwritten
    from_scratch = alice.save_mask(case.id, h.box(1, 1, 2, 2), None)
    assert from_scratch.conflict.id == stale.version.id  # started before the newest existed


def test_two_raters_stay_side_by_side_and_a_stale_base_is_reported(alice, bob, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    a1 = alice.save_mask(case.id, h.box(5, 5, 25, 35), None).version
    b1 = bob.save_mask(case.id, h.box(5, 10, 25, 40), a1.id)  # bob starts from alice's mask
    assert b1.conflict is None
    a2 = alice.save_mask(case.id, h.box(5, 5, 30, 35), a1.id).version
    b2 = bob.save_mask(case.id, h.box(6, 10, 25, 40), a1.id)  # still on alice's first
    assert b2.conflict is not None and b2.conflict.id == a2.id
    latest = alice.latest_masks(case.id)
    assert set(latest) == {"alice", "bob"} and latest["bob"].id == b2.version.id
    row = alice.review_queue(order="disagreement")[0]
    assert row.raters == 2 and row.last_author == "bob" and 0 < row.disagreement < 1
    assert [r.case_id for r in alice.review_queue(rater="bob")] == [case.id]
    assert alice.review_queue(rater="carol") == []
    other = alice.add_case(h.photo(tmp_path, "x.png", seed=5))
    with pytest.raises(ValueError, match="not a version of case"):
        alice.save_mask(other.id, h.box(0, 0, 1, 1), a1.id)


def test_sign_off_needs_a_reviewer_and_blocks_edits_until_reopened(alice, bob, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    bob.save_mask(case.id, h.box(0, 0, 5, 5), None)
    with pytest.raises(PermissionDenied):
        bob.set_state(case.id, ReviewState.SIGNED_OFF)
    signed = alice.set_state(case.id, ReviewState.SIGNED_OFF, "border checked")
    assert (signed.state, signed.state_by, signed.state_comment) == (
        ReviewState.SIGNED_OFF, "alice", "border checked")
    assert signed.state_at is not None and signed.state_at.tzinfo is not None
    with pytest.raises(ReviewError):
        bob.save_mask(case.id, h.box(0, 0, 6, 6), None)
    with pytest.raises(ReviewError):
        alice.set_state(case.id, ReviewState.NEW)
    alice.set_state(case.id, ReviewState.IN_REVIEW, "reopened")
    bob.save_mask(case.id, h.box(0, 0, 6, 6), None)
    assert alice.counts()[ReviewState.CORRECTED] == 1
    assert sum(alice.counts().values()) == 1


def test_every_write_is_audited_with_its_user(alice, bob, tmp_path):
    case = alice.add_case(h.photo(tmp_path))
    alice.record_analysis(case.id, h.summary())
    bob.save_mask(case.id, h.box(0, 0, 5, 5), None)
    alice.set_state(case.id, ReviewState.SIGNED_OFF, "ok")
    entries = alice.audit(case.id)
    assert [(e["action"], e["user"]) for e in entries] == [
        ("set state", "alice"), ("save mask", "bob"), ("record analysis", "alice"),
        ("add case", "alice")]
    assert entries[0]["detail"] == {"from": "corrected", "to": "signed off", "comment": "ok"}
    assert {e["action"] for e in alice.audit()} >= {"add user"}


def test_hostile_text_is_bound_not_executed(alice, tmp_path):
    name = "x'); DROP TABLE cases;--"
    case = alice.add_case(h.photo(tmp_path, "q'uote.png"), {name: name})
    alice.set_state(case.id, ReviewState.IN_REVIEW, name)
    assert alice.get_case(case.id).state_comment == name
    assert alice.get_case(case.id).labels == {name: name}


def test_unreachable_server_raises_store_unavailable_without_the_password(backend, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'plain-file'}/cases.sqlite"
        (tmp_path / "plain-file").write_text("not a folder")
    else:
        url = "postgresql://someone:s3cret@127.0.0.1:1/cases?connect_timeout=2"
    with pytest.raises(StoreUnavailable) as caught:
        CaseStore.open(url, user="alice")
    assert "s3cret" not in str(caught.value)


def test_importing_the_states_does_not_load_sqlalchemy():
    """The app's GUI thread imports the enums at start-up; SQLAlchemy waits for the store."""
    import subprocess

    code = ("import sys; from lesionviewer.store.states import ReviewState, Role; "
            "import lesionviewer.store as s; assert s.ReviewState is ReviewState; "
            "print('sqlalchemy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "False"


def test_ping_answers_while_the_server_is_there(alice):
    assert alice.ping() is None


def test_ping_raises_store_unavailable_when_the_server_is_gone():
    from lesionviewer.store import db

    url = "postgresql://alice:secret-word@127.0.0.1:1/cases"  # nothing listens on port 1
    gone = CaseStore(db.make_engine(url), url, "alice", Role.ANNOTATOR)
    with pytest.raises(StoreUnavailable) as caught:
        gone.ping()
    assert "secret-word" not in str(caught.value)
    gone.close()


def test_queue_rows_of_given_cases(alice, bob, tmp_path):
    cases = [alice.add_case(h.photo(tmp_path, f"{n}.png", n)) for n in range(4)]
    bob.save_mask(cases[1].id, h.box(0, 0, 5, 5), None)
    bob.save_mask(cases[3].id, h.box(0, 0, 5, 5), None)
    alice.save_mask(cases[3].id, h.box(0, 0, 9, 9), None)
    rows = alice.queue_rows([c.id for c in cases[1:]])
    assert [r.case_id for r in rows] == [c.id for c in cases[1:]]  # case id order
    assert rows[2].raters == 2 and rows[2].disagreement > 0
    assert [r.case_id for r in alice.queue_rows([c.id for c in cases], rater="bob")] == \
        [cases[1].id, cases[3].id]
    assert alice.queue_rows([]) == [] and alice.queue_rows([10_000]) == []
    many = list(range(1, 70_001))  # past PostgreSQL's 65,535 bound parameters: in chunks
    assert len(alice.queue_rows(many)) == 4
