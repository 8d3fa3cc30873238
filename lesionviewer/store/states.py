"""Review states of a case, who may move them, and the store's errors.

A case moves ``new -> analysed -> in review -> corrected -> signed off``; an edit may skip
ahead (a mask drawn on a photo never analysed), and a reviewer may reopen a signed-off case.
Signing off (and reopening) is a separate permission from editing: :attr:`Role.REVIEWER`.
"""

from __future__ import annotations

import enum


class ReviewState(enum.Enum):
    """Where a case stands in review; ``.value`` is what the store and its files hold."""

    NEW = "new"
    ANALYSED = "analysed"
    IN_REVIEW = "in review"
    CORRECTED = "corrected"
    SIGNED_OFF = "signed off"

    @property
    def rank(self) -> int:
        """Position in the workflow, 0 (new) .. 4 (signed off): the queue's "state" order."""
        return _ORDER.index(self)

    @classmethod
    def parse(cls, text: "str | ReviewState") -> "ReviewState":
        """The state named by its value ("signed off") or a CLI spelling ("signed-off",
        "SIGNED_OFF"); raises ValueError for anything else."""
        if isinstance(text, cls):
            return text
        key = str(text).strip().lower().replace("-", " ").replace("_", " ")
        for state in cls:
            if state.value == key:
                return state
        raise ValueError(f"unknown review state {text!r}; one of: "
                         + ", ".join(s.value for s in cls))


_ORDER = list(ReviewState)


class Role(enum.Enum):
    """What a user of the store may do: annotators edit; reviewers also sign off and grant."""

    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"


#: The moves :meth:`CaseStore.set_state` accepts (staying put is always allowed).
ALLOWED: dict[ReviewState, set[ReviewState]] = {
    ReviewState.NEW: {ReviewState.ANALYSED, ReviewState.IN_REVIEW, ReviewState.CORRECTED},
    ReviewState.ANALYSED: {ReviewState.IN_REVIEW, ReviewState.CORRECTED, ReviewState.SIGNED_OFF},
    ReviewState.IN_REVIEW: {ReviewState.ANALYSED, ReviewState.CORRECTED, ReviewState.SIGNED_OFF},
    ReviewState.CORRECTED: {ReviewState.IN_REVIEW, ReviewState.SIGNED_OFF},
    ReviewState.SIGNED_OFF: {ReviewState.IN_REVIEW},  # reopened by a reviewer
}

#: States an edit (a saved mask) moves to CORRECTED; a signed-off case must be reopened first.
EDITABLE = {ReviewState.NEW, ReviewState.ANALYSED, ReviewState.IN_REVIEW, ReviewState.CORRECTED}


class ReviewError(Exception):
    """A move the review workflow does not allow (e.g. editing a signed-off case)."""


class PermissionDenied(Exception):
    """The user lacks the role for this (signing off, reopening or granting needs a reviewer)."""


class LoginMismatch(PermissionDenied):
    """On a team store (PostgreSQL) the user is the database login; another name was asked for."""


class StoreUnavailable(Exception):
    """The database cannot be reached (server down, network gone); the message is redacted."""


def check_move(old: ReviewState, new: ReviewState, role: Role) -> None:
    """Raise ReviewError / PermissionDenied unless ``role`` may move a case from ``old`` to
    ``new``. Signing off and leaving "signed off" need :attr:`Role.REVIEWER`."""
    if old is new:
        return
    if new not in ALLOWED[old]:
        raise ReviewError(f"a case cannot go from '{old.value}' to '{new.value}'")
    if ReviewState.SIGNED_OFF in (old, new) and role is not Role.REVIEWER:
        verb = "sign off" if new is ReviewState.SIGNED_OFF else "reopen a signed-off case"
        raise PermissionDenied(f"only a reviewer may {verb}")
