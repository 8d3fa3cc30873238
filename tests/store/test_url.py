"""Which store a run uses, and passwords kept out of URLs shown, settings and logs."""

from __future__ import annotations

import logging

import pytest
from keyring.backend import KeyringBackend

from lesionviewer.store.url import (connect_url, default_url, normalise, password_from_keyring,
                                    redact, resolve_url, store_password)


class _MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.entries = {}

    def get_password(self, service, username):
        return self.entries.get((service, username))

    def set_password(self, service, username, password):
        self.entries[(service, username)] = password

    def delete_password(self, service, username):
        self.entries.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    import keyring

    before = keyring.get_keyring()
    backend = _MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


def test_resolution_order(monkeypatch, _private_user_folders):
    assert resolve_url() == default_url()
    assert default_url() == f"sqlite:///{(_private_user_folders / 'data' / 'cases.sqlite').as_posix()}"
    assert resolve_url(settings_url="postgresql://s@h/db") == "postgresql://s@h/db"
    monkeypatch.setenv("LESIONVIEWER_DB", "postgresql://env@h/db")
    assert resolve_url(settings_url="postgresql://s@h/db") == "postgresql://env@h/db"
    assert resolve_url("sqlite:////tmp/x.sqlite", "postgresql://s@h/db") == "sqlite:////tmp/x.sqlite"
    assert resolve_url("  ", None) == "postgresql://env@h/db"  # blank counts as unset


@pytest.mark.parametrize("url, shown", [
    ("postgresql://ann:s3cr%40t@db.example:5432/cases", "postgresql://ann:***@db.example:5432/cases"),
    ("postgresql://ann@db.example/cases?password=s3cret&sslmode=require",
     "postgresql://ann@db.example/cases?password=***&sslmode=require"),
    ("sqlite:////home/ann/cases.sqlite", "sqlite:////home/ann/cases.sqlite"),
    ("not a url :pw@", "not a url :pw@"),
])
def test_redact_hides_passwords(url, shown):
    assert redact(url) == shown


def test_postgresql_urls_use_psycopg_and_pass_tls_options_through():
    parsed = normalise("postgresql://ann@db.example/cases?sslmode=verify-full"
                       "&sslrootcert=/etc/ca.pem&sslcert=/c.pem&sslkey=/k.pem")
    assert parsed.drivername == "postgresql+psycopg"
    from sqlalchemy import create_engine

    engine = create_engine(parsed)
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    assert {k: kwargs[k] for k in ("sslmode", "sslrootcert", "sslcert", "sslkey")} == {
        "sslmode": "verify-full", "sslrootcert": "/etc/ca.pem", "sslcert": "/c.pem",
        "sslkey": "/k.pem"}
    with pytest.raises(ValueError, match="not a database URL"):
        normalise("::nonsense::")


def test_keyring_supplies_the_password_in_memory_only(memory_keyring, caplog):
    url = "postgresql://ann@db.example:5433/cases"
    assert password_from_keyring(url) is None
    assert store_password(url, "s3cret")
    assert memory_keyring.entries == {("lesionviewer-db", "ann@db.example:5433/cases"): "s3cret"}
    with caplog.at_level(logging.DEBUG):
        target = connect_url(url)
    assert target.password == "s3cret" and "s3cret" not in redact(target)
    assert "s3cret" not in caplog.text
    assert connect_url("postgresql://ann:given@db.example/cases").password == "given"


@pytest.mark.parametrize("backend", ["fail", "null"])
def test_without_a_keyring_libpq_pgpass_applies(backend):
    import keyring
    from keyring.backends import fail, null

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring() if backend == "fail" else null.Keyring())
    try:
        assert store_password("postgresql://ann@h/db", "pw") is False  # the caller says .pgpass
        assert connect_url("postgresql://ann@h/db").password is None  # libpq reads PGPASSFILE
    finally:
        keyring.set_keyring(before)


def test_a_real_server_accepts_the_keyring_password(pg_url, memory_keyring):
    from sqlalchemy.engine import URL, make_url

    from lesionviewer.store import CaseStore

    full = make_url(pg_url)
    bare = URL.create(full.drivername, full.username, None, full.host, full.port,
                      full.database).render_as_string(hide_password=False)
    assert ":" not in bare.split("//")[1].split("@")[0]  # no password in the URL itself
    store_password(bare, full.password)
    with CaseStore.open(bare) as store:  # a team store's user is the URL's login
        assert store.backend == "postgresql" and "***" not in store.url_for_display
        assert store.user == full.username
        assert full.password not in store.url_for_display
