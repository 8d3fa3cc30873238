"""Engines, transactions and migrations for the case store, on SQLite and PostgreSQL.

SQLite (one desk): WAL journal (readers never wait for the writer), ``synchronous=FULL``
(a committed edit survives a power cut), foreign keys on, a 10 s busy timeout, and every
write transaction opened with ``BEGIN IMMEDIATE`` so two writers queue up instead of failing
half-way. Each write is one short transaction: a kill -9 at any instant leaves the last
committed state.

PostgreSQL (a team): psycopg 3, connections checked before use (a restarted server is
reconnected), a 5 s connect timeout unless the URL sets one, and the migration run under a
transaction-scoped advisory lock so two clients opening a fresh store do not race.

Both hide bound values from error messages (``hide_parameters``): a failed statement's text
never carries a comment, a label or a mask into a log.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from lesionviewer.store.states import StoreUnavailable
from lesionviewer.store.url import connect_url, normalise, redact, sqlite_file

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x6C76_6361  # "lvca": advisory lock key of the schema upgrade
_SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                   "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=10000")
_WRITE = "lesionviewer_write"


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (password from the keyring when the URL has none)."""
    target = connect_url(url)
    if target.get_backend_name() == "sqlite":
        path = sqlite_file(target)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a share that went away, a file in the way
                raise StoreUnavailable(f"the case store at {redact(url)} cannot be reached "
                                       f"({exc.strerror or type(exc).__name__})") from None
        engine = create_engine(target, connect_args={"timeout": 10}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    connect_args = {} if "connect_timeout" in target.query else {"connect_timeout": 5}
    return create_engine(target, pool_pre_ping=True, connect_args=connect_args,
                         hide_parameters=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A write takes the lock at BEGIN: a deferred transaction that reads first and then
        # writes could fail with "database is locked" while another writer commits.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed on leaving, rolled back on an exception."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction (a consistent snapshot)."""
    with engine.connect() as conn:
        with conn.begin():
            yield conn


def migrate(conn: Connection) -> None:
    """Bring the schema to the newest migration (creates it in an empty database), inside the
    caller's write transaction; on PostgreSQL other clients opening now wait for it."""
    from alembic import command
    from alembic.config import Config

    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the store cannot be reached now (server gone, network
    down, SQLite file locked past the busy timeout) rather than a bug or a refused value."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError))


def unavailable(exc: BaseException, url: str) -> StoreUnavailable:
    """The StoreUnavailable to raise for ``exc``: the redacted URL and why (a refused login,
    or the driver's first line with any password in it masked)."""
    original = getattr(exc, "orig", None) or exc
    text = str(original)
    # psycopg gives no SQLSTATE for a refused login; libpq's words are stable across versions
    if str(getattr(original, "sqlstate", "") or "").startswith("28") or \
            "authentication failed" in text or "no password supplied" in text:
        reason = "the server refused the user name or password"
    else:
        lines = text.strip().splitlines()
        reason = lines[0][:200] if lines else type(original).__name__
        secret = normalise(url).password
        if secret:
            reason = reason.replace(secret, "***")  # libpq does not quote it; never trust that
    return StoreUnavailable(f"the case store at {redact(url)} cannot be reached: {reason}")
