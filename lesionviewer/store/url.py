"""Which database the case store uses, and keeping its password out of sight.

Order: the ``--db`` option, then ``$LESIONVIEWER_DB``, then the URL saved in the settings,
then the embedded default, ``sqlite:///<user data folder>/cases.sqlite``. A PostgreSQL URL
(``postgresql://user@host:5432/db?sslmode=verify-full&sslrootcert=/path/ca.pem``) makes it a
team store; its query parameters (sslmode, sslrootcert, sslcert, sslkey, passfile,
connect_timeout, ...) go to libpq through psycopg unchanged.

Passwords never go into settings files or logs: a URL shown anywhere passes through
:func:`redact`. A URL without a password takes it from the OS keyring (service
``lesionviewer-db``), else libpq finds it in ``$PGPASSFILE`` or ``~/.pgpass``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import platformdirs
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

log = logging.getLogger(__name__)

DB_ENV = "LESIONVIEWER_DB"
HOME_ENV = "LESIONVIEWER_HOME"  # the app's portable / test home (lesionviewer.app.dirs)
KEYRING_SERVICE = "lesionviewer-db"
DEFAULT_FILE = "cases.sqlite"
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|sslpassword)=)[^&#]*")
_USERINFO = re.compile(r"(://[^:/@?#]*:)[^@/?#]*@")


def data_dir() -> Path:
    """The user data folder (``$LESIONVIEWER_HOME/data`` when set, as the app does)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / "data"
    return Path(platformdirs.user_data_dir("lesionviewer", appauthor=False))


def default_url() -> str:
    """``sqlite:///<user data folder>/cases.sqlite`` (the folder is made at open)."""
    return f"sqlite:///{(data_dir() / DEFAULT_FILE).as_posix()}"


def resolve_url(cli_url: str | None = None, settings_url: str | None = None) -> str:
    """The store URL: ``cli_url`` (--db), ``$LESIONVIEWER_DB``, ``settings_url``, or the default
    SQLite file; empty strings count as unset."""
    for candidate in (cli_url, os.environ.get(DB_ENV), settings_url):
        if candidate and candidate.strip():
            return candidate.strip()
    return default_url()


def normalise(url: str) -> URL:
    """The SQLAlchemy URL, with a plain ``postgresql://`` (or ``postgres://``) bound to psycopg 3
    (SQLAlchemy would pick psycopg2, not installed). Raises ValueError for a malformed URL
    (the message is redacted)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {redact(url)}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_postgresql(url: str | URL) -> bool:
    parsed = url if isinstance(url, URL) else normalise(url)
    return parsed.get_backend_name() == "postgresql"


def redact(url: str | URL) -> str:
    """``url`` with any password (in the user part or a ``password=`` parameter) as ``***``."""
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
    text = _USERINFO.sub(r"\1***@", text)
    return _SECRET_QUERY.sub(r"\1***", text)


def keyring_user(url: str | URL) -> str:
    """The keyring entry's name for a server URL: ``user@host:port/database``."""
    parsed = url if isinstance(url, URL) else normalise(url)
    return f"{parsed.username or ''}@{parsed.host or ''}:{parsed.port or 5432}/{parsed.database or ''}"


def password_from_keyring(url: str | URL) -> str | None:
    """The password kept in the OS keyring for this server and user, or None (no entry, or
    no keyring backend: libpq then reads ``$PGPASSFILE`` / ``~/.pgpass``)."""
    try:
        import keyring
        from keyring.errors import KeyringError

        return keyring.get_password(KEYRING_SERVICE, keyring_user(url))
    except (KeyringError, RuntimeError, ImportError) as exc:
        log.debug("no keyring password for %s: %s", redact(url), exc)
        return None


def store_password(url: str | URL, password: str) -> bool:
    """Keep ``password`` in the OS keyring for this server and user. False when there is no
    usable keyring: the caller then tells the user to put it in a .pgpass file."""
    try:
        import keyring
        from keyring.errors import KeyringError

        keyring.set_password(KEYRING_SERVICE, keyring_user(url), password)
        if keyring.get_password(KEYRING_SERVICE, keyring_user(url)) == password:
            return True
        reason = "the keyring backend keeps nothing"  # e.g. keyring's null backend
    except (KeyringError, RuntimeError, ImportError) as exc:
        reason = str(exc) or type(exc).__name__
    log.warning("could not keep the password for %s in the keyring: %s", redact(url), reason)
    return False


def connect_url(url: str) -> URL:
    """The URL to connect with: normalised, and for a server without a password in it, the
    keyring's password added (in memory only). With neither, libpq's .pgpass applies."""
    parsed = normalise(url)
    if is_postgresql(parsed) and parsed.password is None:
        password = password_from_keyring(parsed)
        if password:
            parsed = parsed.set(password=password)
    return parsed


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL (None for in-memory or another backend)."""
    parsed = url if isinstance(url, URL) else normalise(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)
