"""The case store: cases, analyses, every rater's mask versions, review state and an audit log.

One :class:`CaseStore` per program and user. Every write is one short transaction that also
appends to the audit table and records the user; masks are inserted, never updated, so two
people (or two programs of one person) saving the same case keep both versions and the later
save is told (:attr:`SaveResult.conflict`). Every value reaches the database as a bound
parameter (SQLAlchemy Core); no SQL is built from strings.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from lesionviewer.io.atomic import to_json_ready
from lesionviewer.store import db, schema as t
from lesionviewer.store.masks import encode_mask
from lesionviewer.store.records import (Agreement, CaseRecord, ImportReport, MaskVersion,
                                        QueueRow, SaveResult, case_record, mask_version, utc)
from lesionviewer.store.states import (EDITABLE, LoginMismatch, PermissionDenied, ReviewError,
                                       ReviewState, Role, check_move)
from lesionviewer.store.url import redact, resolve_url
from lesionviewer.store.users import append_audit, check_name, default_user, now, register
from lesionviewer.store.versions import conflict_for, latest_rows

log = logging.getLogger(__name__)
_SAVE_ATTEMPTS = 5  # a save that loses a race for its version number tries again


def _guarded(method):
    """Turn "the database cannot be reached" into StoreUnavailable (redacted message)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except DBAPIError as exc:
            if db.is_unavailable(exc):
                raise db.unavailable(exc, self._url) from None
            raise

    return wrapper


def _store_user(conn: Connection, claimed: str | None) -> str:
    """Who this store records: on PostgreSQL the database login (a different ``claimed``
    name raises LoginMismatch), on SQLite ``claimed`` or the OS login."""
    if conn.dialect.name != "postgresql":
        return claimed if claimed is not None else check_name(default_user())
    login = conn.execute(select(func.session_user())).scalar_one()
    if claimed is not None and claimed != login:
        raise LoginMismatch(f"on a team store you are recorded as your database login "
                            f"'{login}'; the name '{claimed}' was not used (log in as "
                            f"'{claimed}' to work under that name)")
    return login


class CaseStore:
    """The case store at one URL, used by one user (see :meth:`open`)."""

    def __init__(self, engine, url: str, user: str, role: Role):
        self._engine = engine
        self._url = url
        self.user = user
        self.role = role

    # --- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None, user: str | None = None,
             role: Role | None = None) -> "CaseStore":
        """Open (and create or upgrade) the store at ``url`` (default: :func:`resolve_url`).

        user: the name recorded on every write. SQLite (one desk): default the OS login, any
        name may be given. PostgreSQL (a team): always the database login (``session_user``),
        which the server's triggers check too; another name raises LoginMismatch. The first
        user of a fresh store becomes a reviewer, later ones annotators until a reviewer
        grants more.
        role: act with this role instead (a reviewer may open as an annotator); asking for
        more than granted raises PermissionDenied. Raises StoreUnavailable when the database
        cannot be reached, ValueError for a malformed URL or an empty user name.
        """
        url = url or resolve_url()
        claimed = None if user is None else check_name(user)
        engine = db.make_engine(url)
        try:
            with db.writing(engine) as conn:
                db.migrate(conn)
                user = _store_user(conn, claimed)
                granted = register(conn, user)
        except (DBAPIError, LoginMismatch) as exc:
            engine.dispose()
            if isinstance(exc, DBAPIError) and db.is_unavailable(exc):
                raise db.unavailable(exc, url) from None
            raise
        if role is Role.REVIEWER and granted is not Role.REVIEWER:
            engine.dispose()
            raise PermissionDenied(f"{user} is not a reviewer in this store")
        log.info("case store %s opened by %s (%s)", redact(url), user, (role or granted).value)
        return cls(engine, url, user, role or granted)

    @property
    def url_for_display(self) -> str:
        return redact(self._url)

    @property
    def backend(self) -> str:
        """"sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    @_guarded
    def ping(self) -> None:
        """One round trip to the database (``SELECT 1``): returns when it answers, raises
        StoreUnavailable when it cannot be reached. For a probe while the server is away."""
        with db.reading(self._engine) as conn:
            conn.execute(select(literal(1))).scalar_one()

    def __enter__(self) -> "CaseStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- cases --------------------------------------------------------------------------
    @_guarded
    def add_case(self, photo_path: Path, labels: dict | None = None) -> CaseRecord:
        """The case of this photo, added if new (identified by the SHA-256 of its bytes, so
        adding it again changes nothing; a moved photo updates ``photo_uri``; given labels
        are merged into the case's). Raises OSError when the photo cannot be read."""
        from lesionviewer.store.photos import photo_facts

        facts = photo_facts(Path(photo_path))
        for attempt in range(2):
            try:
                with db.writing(self._engine) as conn:
                    return self._add_case(conn, facts, labels)
            except IntegrityError:  # another program added the same photo meanwhile
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _add_case(self, conn: Connection, facts: dict, labels: dict | None) -> CaseRecord:
        row = conn.execute(select(t.cases).where(t.cases.c.content_sha256 == facts["sha256"])
                           .with_for_update()).first()
        labels = to_json_ready(labels or {})
        if row is None:
            case_id = conn.execute(insert(t.cases).values(
                photo_uri=facts["uri"], content_sha256=facts["sha256"], width=facts["width"],
                height=facts["height"], size_bytes=facts["size"], labels=labels,
                state=ReviewState.NEW.value, state_rank=ReviewState.NEW.rank, row_version=1,
                created_at=now(), created_by=self.user, queue_uncertainty=-1.0,
                queue_disagreement=-1.0, raters=0).returning(t.cases.c.id)).scalar_one()
            self._audit(conn, "add case", case_id, {"photo_uri": facts["uri"], "labels": labels})
            return self._case(conn, case_id)
        changes: dict[str, Any] = {}
        if row.photo_uri != facts["uri"]:
            changes["photo_uri"] = facts["uri"]
        merged = {**(row.labels or {}), **labels}
        if merged != (row.labels or {}):
            changes["labels"] = merged
        if row.width is None and facts["width"] is not None:
            changes.update(width=facts["width"], height=facts["height"])
        if changes:
            self._update_case(conn, row, changes)
            self._audit(conn, "update case", row.id,
                        {"was": {k: getattr(row, k) for k in changes}, **changes})
        return self._case(conn, row.id)

    @_guarded
    def case_for_photo(self, photo_path: Path) -> CaseRecord | None:
        """The case of this photo (by content), or None when not in the store."""
        from lesionviewer.io.hashing import content_hash

        sha = content_hash(photo_path)
        with db.reading(self._engine) as conn:
            row = conn.execute(select(t.cases).where(t.cases.c.content_sha256 == sha)).first()
        return None if row is None else case_record(row)

    @_guarded
    def case_for_hash(self, content_sha256: str) -> CaseRecord | None:
        """The case whose photo has this SHA-256 (64 hex digits), or None."""
        with db.reading(self._engine) as conn:
            row = conn.execute(select(t.cases).where(
                t.cases.c.content_sha256 == content_sha256.lower())).first()
        return None if row is None else case_record(row)

    @_guarded
    def get_case(self, case_id: int) -> CaseRecord:
        """The case with this id; KeyError when there is none."""
        with db.reading(self._engine) as conn:
            return self._case(conn, case_id)

    # --- analyses -----------------------------------------------------------------------
    @_guarded
    def record_analysis(self, case_id: int, summary: dict) -> None:
        """Keep an analysis of the case: ``summary`` is lesionviewer's analysis record
        (:meth:`lesionviewer.engine.analysis.Analysis.report`, or analyze's JSON; optional
        "maps_uri": where its maps were written). The whole dict is kept; its GED and
        malignancy feed the review queue. Moves a new case to "analysed"."""
        with db.writing(self._engine) as conn:
            self._record_analysis(conn, case_id, summary)

    def _record_analysis(self, conn: Connection, case_id: int, summary: dict) -> None:
        from lesionviewer.store.analyses import analysis_values, uncertainty_key

        values = analysis_values(summary)
        row = self._lock_case(conn, case_id)
        conn.execute(insert(t.analyses).values(case_id=case_id, author=self.user,
                                               created_at=now(), **values))
        changes: dict[str, Any] = {"ged": values["ged"], "malignancy": values["malignancy"],
                                   "queue_uncertainty": uncertainty_key(values)}
        if row.state == ReviewState.NEW.value:
            changes.update(self._state_values(ReviewState.ANALYSED, None))
        self._update_case(conn, row, changes)
        self._audit(conn, "record analysis", case_id,
                    {"model_id": values["model_id"], "ged": values["ged"],
                     "state": changes.get("state", row.state)})

    # --- masks --------------------------------------------------------------------------
    @_guarded
    def latest_masks(self, case_id: int) -> dict[str, MaskVersion]:
        """Each rater's newest mask of the case: {author: version}, by author name."""
        with db.reading(self._engine) as conn:
            rows = conn.execute(latest_rows(case_id)).all()
        return {row.author: mask_version(row) for row in sorted(rows, key=lambda r: r.author)}

    @_guarded
    def history(self, case_id: int, author: str | None = None) -> list[MaskVersion]:
        """Every mask version of the case (of one author, given one), oldest first."""
        query = select(t.mask_versions).where(t.mask_versions.c.case_id == case_id)
        if author is not None:
            query = query.where(t.mask_versions.c.author == author)
        with db.reading(self._engine) as conn:
            rows = conn.execute(query.order_by(t.mask_versions.c.id)).all()
        return [mask_version(row) for row in rows]

    @_guarded
    def save_mask(self, case_id: int, mask: np.ndarray, parent_id: int | None,
                  source: str = "edit", created_at: _dt.datetime | None = None) -> SaveResult:
        """Store ``mask`` (HxW bool) as this user's next version of the case.

        parent_id: the version the edit started from (any rater's), None for one drawn from
        scratch. When that is no longer the newest of its line (someone saved meanwhile) or
        this user saved a newer version elsewhere, the mask is still stored and the result's
        ``conflict`` names the version it was based past. Moves the case to "corrected".
        Raises ReviewError on a signed-off case, ValueError for a mask of the wrong size or a
        parent from another case, KeyError for an unknown case.
        """
        mask = np.array(mask, dtype=bool)  # a copy: the editor goes on changing its own
        png = encode_mask(mask)  # before the transaction: keep it short
        for attempt in range(_SAVE_ATTEMPTS):
            try:
                with db.writing(self._engine) as conn:
                    return self._save_mask(conn, case_id, mask, png, parent_id, source,
                                           created_at)
            except IntegrityError:
                if attempt + 1 == _SAVE_ATTEMPTS:
                    raise
                log.info("version number of case %s taken meanwhile; saving again", case_id)
        raise AssertionError("unreachable")

    def _save_mask(self, conn, case_id, mask, png, parent_id, source, created_at) -> SaveResult:
        from lesionviewer.store.agreement import raters_ged

        row = self._lock_case(conn, case_id)
        state = ReviewState(row.state)
        if state not in EDITABLE:
            raise ReviewError(f"case {case_id} is {state.value}; a reviewer must reopen it "
                              f"before it can be edited")
        height, width = mask.shape
        if row.width is not None and (row.height, row.width) != (height, width):
            raise ValueError(f"the mask is {height}x{width}, the photo {row.height}x{row.width}")
        conflict = conflict_for(conn, case_id, self.user, parent_id)
        mv = t.mask_versions.c
        number = conn.execute(select(func.coalesce(func.max(mv.number), 0)).where(
            mv.case_id == case_id, mv.author == self.user)).scalar_one() + 1
        created_at = created_at or now()
        area = np.count_nonzero(mask)
        version_id = conn.execute(insert(t.mask_versions).values(
            case_id=case_id, author=self.user, created_at=created_at, parent_id=parent_id,
            number=number, width=width, height=height, area_px=area, mask_png=png,
            source=source).returning(mv.id)).scalar_one()
        saved = MaskVersion(version_id, case_id, self.user, created_at, parent_id, number,
                            mask, source)
        # the other raters' newest masks (this one is in memory: a 50 MP decode saved)
        latest = [saved] + [mask_version(r) for r in conn.execute(latest_rows(case_id)).all()
                            if r.author != self.user]
        disagreement = raters_ged([v.mask for v in latest]) if len(latest) > 1 else None
        changes: dict[str, Any] = {
            "raters": len(latest), "last_author": self.user, "disagreement": disagreement,
            "queue_disagreement": -1.0 if disagreement is None else disagreement}
        if row.width is None:
            changes.update(width=width, height=height)
        if state is not ReviewState.CORRECTED:
            changes.update(self._state_values(ReviewState.CORRECTED, None))
        self._update_case(conn, row, changes)
        self._audit(conn, "save mask", case_id, {
            "version": version_id, "number": number, "parent": parent_id, "source": source,
            "area_px": area, "conflict_with": conflict.id if conflict else None})
        return SaveResult(saved, conflict)

    # --- review state -------------------------------------------------------------------
    @_guarded
    def set_state(self, case_id: int, state: ReviewState, comment: str | None = None) -> CaseRecord:
        """Move the case to ``state`` (with an optional comment), recording who and when.
        Signing off, and reopening a signed-off case, need Role.REVIEWER (PermissionDenied);
        a move the workflow does not allow raises ReviewError (see states.ALLOWED)."""
        state = ReviewState.parse(state)
        with db.writing(self._engine) as conn:
            return self._set_state(conn, case_id, state, comment)

    def _set_state(self, conn: Connection, case_id: int, state: ReviewState,
                   comment: str | None) -> CaseRecord:
        row = self._lock_case(conn, case_id)
        old = ReviewState(row.state)
        check_move(old, state, self.role)
        if old is state and comment is None:
            return case_record(row)
        self._update_case(conn, row, self._state_values(state, comment))
        self._audit(conn, "set state", case_id,
                    {"from": old.value, "to": state.value, "comment": comment})
        return self._case(conn, case_id)

    @_guarded
    def grant(self, user: str, role: Role) -> None:
        """Give ``user`` a role (added to the store if new). Reviewers only."""
        if self.role is not Role.REVIEWER:
            raise PermissionDenied("only a reviewer may grant roles")
        user = check_name(user)
        with db.writing(self._engine) as conn:
            old = conn.execute(select(t.users.c.role).where(t.users.c.name == user)).scalar()
            if old is None:
                conn.execute(insert(t.users).values(name=user, role=role.value,
                                                    created_at=now(), created_by=self.user))
            elif old != role.value:
                conn.execute(update(t.users).where(t.users.c.name == user).values(role=role.value))
            self._audit(conn, "grant", None, {"user": user, "role": role.value, "was": old})

    @_guarded
    def role_of(self, user: str) -> Role | None:
        with db.reading(self._engine) as conn:
            value = conn.execute(select(t.users.c.role).where(t.users.c.name == user)).scalar()
        return None if value is None else Role(value)

    # --- reading many -------------------------------------------------------------------
    @_guarded
    def review_queue(self, order: str = "uncertainty", state: ReviewState | None = None,
                     rater: str | None = None, limit: int = 200, offset: int = 0) -> list[QueueRow]:
        """Cases to review, most in need first: order "uncertainty" (model distrusts its
        result, then highest GED), "disagreement" (raters' masks differ most) or "state"
        (workflow order, oldest first); filtered by state and by a rater who drew a mask."""
        from lesionviewer.store.queue import queue_query, queue_row

        query = queue_query(order, None if state is None else ReviewState.parse(state), rater,
                            limit, offset)
        with db.reading(self._engine) as conn:
            return [queue_row(r) for r in conn.execute(query)]

    @_guarded
    def queue_rows(self, case_ids: Iterable[int], rater: str | None = None) -> list[QueueRow]:
        """The review-queue rows of these cases (of those ``rater`` drew a mask for, given
        one), in case id order; ids not in the store are left out. Read by primary key in
        chunks, so any number of ids stays within the drivers' bound-parameter limits."""
        from lesionviewer.store.queue import QUEUE_ROWS_CHUNK, queue_row, rows_query

        ids = sorted(set(case_ids))
        rows: list[QueueRow] = []
        with db.reading(self._engine) as conn:
            for start in range(0, len(ids), QUEUE_ROWS_CHUNK):
                chunk = ids[start:start + QUEUE_ROWS_CHUNK]
                rows += [queue_row(r) for r in conn.execute(rows_query(chunk, rater))]
        return rows

    @_guarded
    def agreement(self, case_id: int) -> Agreement | None:
        """How the raters' newest masks agree (None with fewer than two raters)."""
        from lesionviewer.store.agreement import agreement

        return agreement(self.latest_masks(case_id))

    @_guarded
    def audit(self, case_id: int | None = None, limit: int = 500) -> list[dict]:
        """The newest audit entries (of one case, given one): {id, at, user, case_id, action,
        detail}, newest first."""
        query = select(t.audit).order_by(t.audit.c.id.desc()).limit(limit)
        if case_id is not None:
            query = query.where(t.audit.c.case_id == case_id)
        with db.reading(self._engine) as conn:
            rows = conn.execute(query).all()
        return [{"id": r.id, "at": utc(r.at), "user": r.user, "case_id": r.case_id,
                 "action": r.action, "detail": r.detail} for r in rows]

    @_guarded
    def counts(self) -> dict[ReviewState, int]:
        """How many cases are in each state (every state listed, 0 included)."""
        with db.reading(self._engine) as conn:
            rows = conn.execute(select(t.cases.c.state, func.count()).group_by(t.cases.c.state))
            found = {ReviewState(state): n for state, n in rows}
        return {s: found.get(s, 0) for s in ReviewState}

    @_guarded
    def import_sidecars(self, paths: Iterable[Path]) -> ImportReport:
        """Take in lesionviewer's sidecar autosaves (see :mod:`lesionviewer.store.importing`)."""
        from lesionviewer.store.importing import import_sidecars

        return import_sidecars(self, paths)

    # --- internals ----------------------------------------------------------------------
    def _case(self, conn: Connection, case_id: int) -> CaseRecord:
        row = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).first()
        if row is None:
            raise KeyError(f"no case {case_id} in the store")
        return case_record(row)

    def _lock_case(self, conn: Connection, case_id: int):
        """The case row, locked until the transaction ends (PostgreSQL: FOR UPDATE; SQLite's
        BEGIN IMMEDIATE already holds the whole database)."""
        row = conn.execute(select(t.cases).where(t.cases.c.id == case_id).with_for_update()).first()
        if row is None:
            raise KeyError(f"no case {case_id} in the store")
        return row

    def _state_values(self, state: ReviewState, comment: str | None) -> dict[str, Any]:
        return {"state": state.value, "state_rank": state.rank, "state_by": self.user,
                "state_at": now(), "state_comment": comment}

    def _update_case(self, conn: Connection, row, changes: dict[str, Any]) -> None:
        done = conn.execute(update(t.cases).where(
            t.cases.c.id == row.id, t.cases.c.row_version == row.row_version
        ).values(row_version=row.row_version + 1, **changes))
        if done.rowcount != 1:  # cannot happen under the row lock; never write blind
            raise RuntimeError(f"case {row.id} changed during the transaction")

    def _audit(self, conn: Connection, action: str, case_id: int | None, detail: dict) -> None:
        append_audit(conn, self.user, action, case_id, detail)


