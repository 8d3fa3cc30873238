"""A team store whose server goes away: writes raise StoreUnavailable (password never shown),
the WriteQueue holds them, and they reach the store once the server takes connections again.
The server is made to refuse this database (ALLOW_CONNECTIONS false, its sessions ended), as
a crashed or unreachable server looks to a client."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
import store_helpers as h  # noqa: E402

from lesionviewer.store import CaseStore, StoreUnavailable
from lesionviewer.store.offline import WriteQueue


@contextlib.contextmanager
def _refusing(server, database: str):
    import psycopg
    from psycopg import sql

    def admin(statement):
        with psycopg.connect(host=str(server.root), port=server.port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(statement)

    name = sql.Identifier(database)
    admin(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
    admin(sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}")
          .format(sql.Literal(database)))
    try:
        yield
    finally:
        admin(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))


def test_writes_are_held_while_the_server_is_away_and_land_after(pg_server, pg_url, tmp_path):
    url = make_url(pg_url)
    with CaseStore.open(pg_url, user="alice") as store:
        case = store.add_case(h.photo(tmp_path))
        base = store.save_mask(case.id, h.box(0, 0, 5, 5), None).version
        queue = WriteQueue(tmp_path / "journal.json")
        with _refusing(pg_server, url.database):
            with pytest.raises(StoreUnavailable) as caught:
                store.save_mask(case.id, h.box(0, 0, 6, 6), base.id)
            assert url.password not in str(caught.value) and "***" in str(caught.value)
            held = queue.submit(store, "save_mask", case_id=case.id, mask=h.box(0, 0, 7, 7),
                                parent_id=base.id)
            assert held is None and len(queue.pending(store)) == 1
            assert queue.flush(store).remaining == 1  # still away: kept
            with pytest.raises(StoreUnavailable):
                CaseStore.open(pg_url, user="alice")
        report = queue.flush(store)  # back: the same store object reconnects
        assert len(report.written) == 1 and not report.conflicts and queue.pending() == []
        np.testing.assert_array_equal(store.latest_masks(case.id)["alice"].mask, h.box(0, 0, 7, 7))


def test_a_wrong_password_is_told_apart_and_not_shown(pg_url):
    wrong = make_url(pg_url).set(password="not-the-password")
    with pytest.raises(StoreUnavailable, match="refused the user name or password") as caught:
        CaseStore.open(wrong.render_as_string(hide_password=False), user="alice")
    assert "not-the-password" not in str(caught.value)
