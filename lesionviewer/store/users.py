"""Users of the store and the audit log every write appends to."""

from __future__ import annotations

import datetime as _dt
import getpass

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from lesionviewer.io.atomic import to_json_ready
from lesionviewer.store import schema as t
from lesionviewer.store.states import Role


def now() -> _dt.datetime:
    """The time every row records: aware UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


def default_user() -> str:
    """The OS login name (what the store records unless the user changes it)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "unknown"


def check_name(user: str) -> str:
    """The user name stripped; ValueError unless it has 1 to 128 characters."""
    user = user.strip()
    if not user or len(user) > t.USER_NAME:
        raise ValueError(f"a user name has 1 to {t.USER_NAME} characters, got {user!r}")
    return user


def append_audit(conn: Connection, user: str, action: str, case_id: int | None,
                 detail: dict) -> None:
    """Add one audit entry (in the caller's transaction: it commits with the change)."""
    conn.execute(insert(t.audit).values(at=now(), user=user, case_id=case_id, action=action,
                                        detail=to_json_ready(detail)))


def register(conn: Connection, user: str) -> Role:
    """The user's role, adding them first if new: a reviewer when the store has no users."""
    role = conn.execute(select(t.users.c.role).where(t.users.c.name == user)).scalar()
    if role is not None:
        return Role(role)
    first = conn.execute(select(func.count()).select_from(t.users)).scalar_one() == 0
    granted = Role.REVIEWER if first else Role.ANNOTATOR
    conn.execute(insert(t.users).values(name=user, role=granted.value, created_at=now(),
                                        created_by=user))
    append_audit(conn, user, "add user", None, {"user": user, "role": granted.value,
                                                 "first": first})
    return granted
