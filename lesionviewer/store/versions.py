"""Reading mask versions, and deciding when a save was based on a stale one.

A rater's versions of a case form a line (numbers 1, 2, ...); a save names its parent, the
version the edit started from. The save is stale, and both versions are kept, when that
parent's line has moved on meanwhile, or when the saving user has a newer version of their
own than the parent (saved from another program or computer).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from lesionviewer.store import schema as t
from lesionviewer.store.records import MaskVersion, mask_version


def latest_rows(case_id: int):
    """Each author's newest mask version row of the case."""
    mv = t.mask_versions.c
    newest = select(func.max(mv.id)).where(mv.case_id == case_id).group_by(mv.author)
    return select(t.mask_versions).where(mv.id.in_(newest))


def conflict_for(conn: Connection, case_id: int, user: str, parent_id: int | None) -> MaskVersion | None:
    """The version a save based on ``parent_id`` would pass over: the newest of the
    parent's line if that moved on, else this user's newest if it is newer than the
    parent (or exists at all, for a save from scratch)."""
    mv = t.mask_versions.c
    own = conn.execute(select(func.max(mv.id)).where(
        mv.case_id == case_id, mv.author == user)).scalar_one()
    if parent_id is not None:
        parent = conn.execute(select(mv.case_id, mv.author).where(mv.id == parent_id)).first()
        if parent is None or parent.case_id != case_id:
            raise ValueError(f"mask version {parent_id} is not a version of case {case_id}")
        newest_of_line = conn.execute(select(func.max(mv.id)).where(
            mv.case_id == case_id, mv.author == parent.author)).scalar_one()
        if newest_of_line != parent_id:
            return version_by_id(conn, newest_of_line)
    if own is not None and (parent_id is None or own > parent_id):
        return version_by_id(conn, own)
    return None


def version_by_id(conn: Connection, version_id: int) -> MaskVersion:
    return mask_version(conn.execute(
        select(t.mask_versions).where(t.mask_versions.c.id == version_id)).one())
