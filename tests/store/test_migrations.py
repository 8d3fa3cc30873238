"""The migrations build exactly the declared schema on both backends, run once, and the
backend-specific guarantees hold (SQLite's WAL and foreign keys, PostgreSQL's audit guard)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import delete, insert, inspect, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

sys.path.insert(0, str(Path(__file__).parent))
import store_helpers as h  # noqa: E402

from lesionviewer.store import CaseStore, db, schema


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_migrated_database_matches_the_declared_schema(store_url):
    CaseStore.open(store_url, user="alice").close()
    engine = db.make_engine(store_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == _head()
            assert compare_metadata(context, schema.Base.metadata) == []
            indexes = {i["name"] for i in inspect(conn).get_indexes("cases")}
            assert {"ix_cases_queue_uncertainty", "ix_cases_state_disagreement"} <= indexes
    finally:
        engine.dispose()


def test_opening_again_changes_nothing(store_url, tmp_path):
    with CaseStore.open(store_url, user="alice") as store:
        case = store.add_case(h.photo(tmp_path))
    with CaseStore.open(store_url, user="alice") as store:
        assert store.get_case(case.id) == case
        assert [e["action"] for e in store.audit()].count("add user") == 1


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    CaseStore.open(url, user="alice").close()
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
        with pytest.raises(IntegrityError):
            with db.writing(engine) as conn:  # a version of a case that does not exist
                conn.execute(insert(schema.mask_versions).values(
                    case_id=999, author="x", created_at=datetime.datetime.now(), number=1,
                    width=1, height=1, area_px=0, mask_png=b"", source="edit"))
    finally:
        engine.dispose()


def test_both_backends_refuse_to_change_or_delete_audit_rows(store_url, tmp_path):
    with CaseStore.open(store_url, user="alice") as store:
        store.add_case(h.photo(tmp_path))
    engine = db.make_engine(store_url)
    try:
        for statement in (update(schema.audit).values(action="forged"), delete(schema.audit)):
            with pytest.raises(DBAPIError, match="append-only"):
                with db.writing(engine) as conn:
                    conn.execute(statement)
        with engine.connect() as conn:
            assert conn.execute(select(schema.audit.c.action)).scalars().all().count("forged") == 0
    finally:
        engine.dispose()


def test_a_store_made_by_the_first_migration_upgrades_with_its_data(store_url, tmp_path):
    from alembic import command

    engine = db.make_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    try:
        with db.writing(engine) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            now = datetime.datetime.now(datetime.timezone.utc)
            conn.execute(insert(schema.users).values(name="old", role="reviewer", created_at=now))
            conn.execute(insert(schema.audit).values(at=now, user="old", case_id=None,
                                                     action="add user", detail={"user": "old"}))
    finally:
        engine.dispose()
    with CaseStore.open(store_url, user="alice") as store:
        assert store.role.value == "annotator"  # "old" was there first
        assert [e["user"] for e in store.audit()][-1] == "old"
