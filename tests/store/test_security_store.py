"""The case store's security: no password in logs, files or command output, and SQL in any
text value (photo name, comment, labels, user name) stored as text, never run."""

from __future__ import annotations

import logging
import sqlite3
from urllib.parse import quote

import numpy as np
import pytest

from lesionviewer.cli import main
from lesionviewer.store import CaseStore, ReviewState, Role, StoreUnavailable

SQL = "x'); DROP TABLE cases;--"


def _secrets(password: str) -> list[str]:
    return [password, quote(password, safe=""), quote(password)]


def _assert_hidden(text: str, password: str) -> None:
    for secret in _secrets(password):
        assert secret not in text


@pytest.fixture
def pg_password(pg_server):
    import pg_server as module

    return module.ROLE_PASSWORD


def test_no_password_in_logs_output_or_files(pg_url, pg_password, tmp_path, caplog, capsys,
                                             _private_user_folders):
    """Open, write, hold a write for later, fail to log in, and run `cases status`: the
    password (which contains quotes and SQL) appears in no log record, no output and no file
    under the user's home (settings, the offline journal, logs)."""
    caplog.set_level(logging.DEBUG)
    photo = tmp_path / "p.png"
    import cv2

    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    with CaseStore.open(pg_url, user="alice") as store:
        assert "***" in store.url_for_display
        case = store.add_case(photo)
        store.save_mask(case.id, np.eye(8, dtype=bool), None)
        audit_text = repr(store.audit(limit=1000))
        from lesionviewer.store.offline import WriteQueue

        held = WriteQueue()  # the journal kept while a server is away names the store too
        held.set_state(store, case.id, ReviewState.IN_REVIEW, comment="held while offline")
        assert held.path.is_file() and _private_user_folders in held.path.parents
    wrong = pg_url.replace(quote(pg_password, safe=""), quote("not-" + pg_password, safe=""))
    with pytest.raises(StoreUnavailable) as refused:
        CaseStore.open(wrong, user="alice")
    assert main(["cases", "--db", pg_url, "status"]) == 0
    assert main(["cases", "--db", wrong, "status"]) == 2
    out = capsys.readouterr()
    assert "postgresql+psycopg://lesionviewer:***@127.0.0.1" in out.out
    assert out.err.count("\n") == 1 and "***" in out.err
    files = "".join(p.read_bytes().decode("utf-8", "replace") for p in _private_user_folders.rglob("*")
                    if p.is_file())
    for text in (caplog.text, out.out, out.err, str(refused.value), audit_text, files):
        _assert_hidden(text, pg_password)


def test_sql_in_every_text_value_round_trips(store_url, backend, tmp_path):
    """A photo name, labels, a comment and a user name holding SQL are stored and read back
    exactly; the tables are all still there and nothing else changed."""
    import cv2

    photo = tmp_path / f"{SQL}.png"
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    user = f"dr {SQL}"
    with CaseStore.open(store_url, user=user) as store:  # first user: reviewer
        assert store.role is Role.REVIEWER
        case = store.add_case(photo, labels={"diagnosis": SQL, SQL: "key"})
        store.record_analysis(case.id, {"model_id": SQL, "ged": 0.1})
        store.save_mask(case.id, np.eye(8, dtype=bool), None)
        store.set_state(case.id, ReviewState.SIGNED_OFF, comment=SQL)
        assert store.review_queue(rater=f"x' OR '1'='1") == []
        assert store.review_queue(rater=user)[0].case_id == case.id
    with CaseStore.open(store_url, user=user) as store:
        again = store.get_case(case.id)
        assert again.photo_uri.endswith(f"/{SQL}.png")
        assert again.labels == {"diagnosis": SQL, SQL: "key"}
        assert (again.state, again.state_by, again.state_comment) == (ReviewState.SIGNED_OFF, user, SQL)
        assert list(store.latest_masks(case.id)) == [user]
        assert store.case_for_photo(photo).id == case.id
        assert sum(store.counts().values()) == 1
        assert {a["user"] for a in store.audit(limit=100)} == {user}


def test_sql_in_a_photo_name_survives_import_and_export(store_url, tmp_path, capsys):
    import csv

    import cv2

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / f"{SQL}.png"), np.zeros((8, 8, 3), np.uint8))
    assert main(["cases", "--db", store_url, "--user", SQL, "import", str(folder)]) == 0
    with CaseStore.open(store_url, user=SQL) as store:
        case_id = store.review_queue()[0].case_id
        store.save_mask(case_id, np.eye(8, dtype=bool), None)
    assert main(["cases", "--db", store_url, "export", "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "labels.csv", encoding="utf-8")))
    assert [(r["photo"], r["raters"]) for r in rows] == [(f"{SQL}.png", SQL)]
    assert (tmp_path / "out" / f"{SQL}.png").is_file()
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"cases", "mask_versions", "audit", "users", "analyses"} <= tables
