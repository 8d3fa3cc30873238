"""The review workflow: which moves are allowed and who may sign off."""

from __future__ import annotations

import pytest

from lesionviewer.store.states import (ALLOWED, PermissionDenied, ReviewError, ReviewState, Role,
                                       check_move)


def test_values_are_what_the_store_and_files_hold():
    assert [s.value for s in ReviewState] == ["new", "analysed", "in review", "corrected",
                                              "signed off"]
    assert [s.rank for s in ReviewState] == [0, 1, 2, 3, 4]
    assert {r.value for r in Role} == {"annotator", "reviewer"}


@pytest.mark.parametrize("text", ["signed off", "signed-off", "SIGNED_OFF", ReviewState.SIGNED_OFF])
def test_parse_accepts_cli_spellings(text):
    assert ReviewState.parse(text) is ReviewState.SIGNED_OFF


def test_parse_refuses_unknown_state():
    with pytest.raises(ValueError, match="unknown review state"):
        ReviewState.parse("approved")


def test_the_usual_path_is_allowed_for_a_reviewer():
    path = list(ReviewState)
    for old, new in zip(path, path[1:]):
        check_move(old, new, Role.REVIEWER)


def test_sign_off_and_reopen_need_a_reviewer():
    with pytest.raises(PermissionDenied):
        check_move(ReviewState.CORRECTED, ReviewState.SIGNED_OFF, Role.ANNOTATOR)
    with pytest.raises(PermissionDenied):
        check_move(ReviewState.SIGNED_OFF, ReviewState.IN_REVIEW, Role.ANNOTATOR)
    check_move(ReviewState.SIGNED_OFF, ReviewState.IN_REVIEW, Role.REVIEWER)


def test_moves_outside_the_workflow_are_refused():
    with pytest.raises(ReviewError):
        check_move(ReviewState.NEW, ReviewState.SIGNED_OFF, Role.REVIEWER)
    with pytest.raises(ReviewError):
        check_move(ReviewState.SIGNED_OFF, ReviewState.NEW, Role.REVIEWER)
    for old, targets in ALLOWED.items():
        assert old not in targets  # staying put is handled apart (always allowed)
        check_move(old, old, Role.ANNOTATOR)
