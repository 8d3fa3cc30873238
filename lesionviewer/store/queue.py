"""The review queue: one indexed query over the case rows.

Each order walks an index backwards or forwards and stops after ``limit`` rows (see the
indexes in :mod:`lesionviewer.store.schema`), so it stays fast at 100,000 cases: "uncertainty"
on (state,) queue_uncertainty, id; "disagreement" on (state,) queue_disagreement, id;
"state" on state_rank, id. The rater filter is an EXISTS on mask_versions(author, case_id).
"""

from __future__ import annotations

from sqlalchemy import exists, select

from lesionviewer.store import schema as t
from lesionviewer.store.records import QueueRow
from lesionviewer.store.states import ReviewState

ORDERS = ("uncertainty", "disagreement", "state")
MAX_LIMIT = 10_000
QUEUE_ROWS_CHUNK = 5_000  # ids per query of queue_rows (PostgreSQL binds at most 65,535)


def queue_query(order: str, state: ReviewState | None, rater: str | None, limit: int,
                offset: int):
    """The SELECT behind :meth:`CaseStore.review_queue`. Raises ValueError for an unknown
    order or a negative offset."""
    if order not in ORDERS:
        raise ValueError(f"unknown queue order {order!r}; one of {', '.join(ORDERS)}")
    if offset < 0 or limit < 0:
        raise ValueError("limit and offset cannot be negative")
    c = t.cases.c
    query = _columns()
    if state is not None:
        # state_rank for the workflow order, so its (state_rank, id) index serves both
        query = query.where(c.state_rank == state.rank if order == "state" else c.state == state.value)
    if rater is not None:
        query = query.where(_drawn_by(rater))
    if order == "uncertainty":
        query = query.order_by(c.queue_uncertainty.desc(), c.id.desc())
    elif order == "disagreement":
        query = query.order_by(c.queue_disagreement.desc(), c.id.desc())
    else:
        query = query.order_by(c.state_rank, c.id)
    return query.limit(min(limit, MAX_LIMIT)).offset(offset)


def rows_query(case_ids: list[int], rater: str | None):
    """The SELECT behind :meth:`CaseStore.queue_rows` for one chunk of case ids."""
    query = _columns().where(t.cases.c.id.in_(case_ids)).order_by(t.cases.c.id)
    return query if rater is None else query.where(_drawn_by(rater))


def _columns():
    c = t.cases.c
    return select(c.id, c.photo_uri, c.state, c.ged, c.malignancy, c.disagreement, c.raters,
                  c.last_author)


def _drawn_by(rater: str):
    """The case has a mask version by ``rater`` (index on mask_versions(author, case_id))."""
    mv = t.mask_versions.c
    return exists(select(mv.id).where(mv.author == rater, mv.case_id == t.cases.c.id))


def queue_row(row) -> QueueRow:
    return QueueRow(case_id=row.id, photo_uri=row.photo_uri, state=ReviewState(row.state),
                    ged=row.ged, malignancy=row.malignancy, disagreement=row.disagreement,
                    raters=row.raters, last_author=row.last_author)
