"""Fixtures for the case store's tests: every test that takes ``store_url`` runs twice, on a
fresh SQLite file and on a fresh database of a real, throwaway PostgreSQL server.

The server (:mod:`pg_server` beside this file) is started once per test session, only when a
PostgreSQL test runs, and removed at the end. Without PostgreSQL binaries the PostgreSQL
variants skip with the reason; with ``LESIONVIEWER_REQUIRE_POSTGRES=1`` (set by ``.ci/run``)
they fail instead, so CI can never pass by skipping them.

Every store test also gets its own home (LESIONVIEWER_HOME, XDG_*), no
``LESIONVIEWER_DB`` from the environment, and the null keyring backend, so no test reads or
writes the developer's real store, settings or keyring.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REQUIRE_ENV = "LESIONVIEWER_REQUIRE_POSTGRES"


def _load(name: str):
    """A helper module beside this file (tests/ has no packages: import mode importlib)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


pg = _load("pg_server")
BACKENDS = ["sqlite", "postgresql"]


def _postgres_missing(reason: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"PostgreSQL is required here ({REQUIRE_ENV}=1) but: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def pg_server():
    """The session's throwaway PostgreSQL server (:class:`pg_server.PostgresServer`)."""
    reason = pg.unavailable_reason()
    if reason:
        _postgres_missing(reason)
    server = pg.PostgresServer()
    try:
        server.start()
    except pg.PostgresUnavailable as e:
        _postgres_missing(f"the server did not start: {e}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def store_clients():
    """tests/store/store_clients.py: client processes that hammer a store, and their checks."""
    return _load("store_clients")


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory, monkeypatch):
    """Keep every store test away from the real user data folder, settings, keyring and
    LESIONVIEWER_DB (platformdirs follows XDG_* on Linux)."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.delenv("LESIONVIEWER_DB", raising=False)
    monkeypatch.setenv("LESIONVIEWER_HOME", str(home))  # the store's and the app's data folder
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.delenv("PGPASSFILE", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    return home


@pytest.fixture(autouse=True)
def _personal_logins(monkeypatch):
    """On a team store the store's user is the database login: a test that opens a store as
    "alice" (``CaseStore.open(url, user="alice")``) logs in as alice, a member of the team
    role with docs/store.md's grants (:func:`pg_server.login_url`). The store's own check is
    untouched: test_permissions_pg.py opens with a mismatching name and is refused."""
    from lesionviewer.store.store import CaseStore

    plain = CaseStore.open.__func__

    def open_as_login(cls, url=None, user=None, role=None):
        return plain(cls, pg.login_url(url, user) if url else url, user=user, role=role)

    monkeypatch.setattr(CaseStore, "open", classmethod(open_as_login))
    return plain


@pytest.fixture
def pg_url(request, pg_server):
    """A fresh, empty PostgreSQL database's URL (password included); dropped after the test."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """A fresh, empty store URL: ``sqlite:///<tmp>/cases.sqlite`` or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cases.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def backend(store_url) -> str:
    """"sqlite" or "postgresql": the backend of this test's ``store_url``."""
    return "sqlite" if store_url.startswith("sqlite") else "postgresql"
