"""Sign-off is a separate permission on a team store too: the store's user is the database
login, and the server itself refuses a sign-off, a reopen or a role change by a login that is
not a reviewer, even through raw SQL. SQLite (one desk) keeps the user name it is given.

The PostgreSQL tests use two personal logins on the throwaway server, alice and bob, members
of the team role with docs/store.md's grants (pg_server.login_url); alice opens the store
first and so is its reviewer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError

sys.path.insert(0, str(Path(__file__).parent))
import pg_server  # noqa: E402  (loaded by conftest)
import store_helpers as h  # noqa: E402

from lesionviewer.cli import main
from lesionviewer.store import (CaseStore, LoginMismatch, PermissionDenied, ReviewState, Role,
                                db, schema as t)
from lesionviewer.store.users import now

REFUSED = "only a reviewer"


@pytest.fixture
def team(pg_url, tmp_path):
    """{"alice": url, "bob": url}, personal logins; alice (first) is the reviewer, bob an
    annotator; one case in review. Also "case": its id."""
    urls = {name: pg_server.login_url(pg_url, name) for name in ("alice", "bob")}
    with CaseStore.open(urls["alice"]) as alice:
        assert (alice.user, alice.role) == ("alice", Role.REVIEWER)
        case = alice.add_case(h.photo(tmp_path))
        alice.set_state(case.id, ReviewState.IN_REVIEW)
    with CaseStore.open(urls["bob"]) as bob:
        assert (bob.user, bob.role) == ("bob", Role.ANNOTATOR)
    return {**urls, "case": case.id}


def _raw(url: str, statement) -> None:
    """Run one statement through this login's own connection, committed."""
    engine = db.make_engine(url)
    try:
        with db.writing(engine) as conn:
            conn.execute(statement)
    finally:
        engine.dispose()


def _state(url: str, case_id: int) -> str:
    with CaseStore.open(url) as store:
        return store.get_case(case_id).state.value


def test_the_store_user_is_the_database_login(team):
    with CaseStore.open(team["bob"], user="bob") as bob:  # the login's own name: fine
        assert bob.user == "bob"
    with pytest.raises(LoginMismatch, match="database login 'alice'; the name 'lead' was not used"):
        CaseStore.open(team["alice"], user="lead")  # the helper who signed off as "lead"
    with CaseStore.open(team["alice"]) as alice:
        assert alice.role_of("lead") is None  # the claimed name was never registered


def test_an_annotator_cannot_sign_off_through_the_store_or_raw_sql(team):
    case_id = team["case"]
    with CaseStore.open(team["bob"]) as bob:
        with pytest.raises(PermissionDenied):
            bob.set_state(case_id, ReviewState.SIGNED_OFF)
    with pytest.raises(PermissionDenied):
        CaseStore.open(team["bob"], role=Role.REVIEWER)
    signed = update(t.cases).where(t.cases.c.id == case_id).values(
        state=ReviewState.SIGNED_OFF.value, state_by="alice")
    with pytest.raises(DBAPIError, match=REFUSED):
        _raw(team["bob"], signed)
    assert _state(team["bob"], case_id) == "in review"
    _raw(team["alice"], signed)  # the reviewer's login may, even by hand
    assert _state(team["alice"], case_id) == "signed off"
    reopened = update(t.cases).where(t.cases.c.id == case_id).values(state="in review")
    with pytest.raises(DBAPIError, match=REFUSED):
        _raw(team["bob"], reopened)
    assert _state(team["bob"], case_id) == "signed off"


def test_an_annotator_cannot_grant_roles_even_by_hand(team):
    with CaseStore.open(team["bob"]) as bob, pytest.raises(PermissionDenied):
        bob.grant("bob", Role.REVIEWER)
    for statement in (update(t.users).where(t.users.c.name == "bob").values(role="reviewer"),
                      insert(t.users).values(name="mallory", role="reviewer",
                                             created_at=now())):
        with pytest.raises(DBAPIError, match=REFUSED):
            _raw(team["bob"], statement)
    with CaseStore.open(team["alice"]) as alice:
        assert alice.role_of("bob") is Role.ANNOTATOR and alice.role_of("mallory") is None
        alice.grant("bob", Role.REVIEWER)  # a reviewer may
    with CaseStore.open(team["bob"]) as bob:
        assert bob.role is Role.REVIEWER
        assert bob.set_state(team["case"], ReviewState.SIGNED_OFF).state_by == "bob"


def test_the_audit_log_records_the_login_not_a_claimed_name(team):
    with CaseStore.open(team["bob"]) as bob:
        bob.save_mask(team["case"], h.box(5, 5, 20, 20), None)
    _raw(team["bob"], insert(t.audit).values(at=now(), user="alice", case_id=team["case"],
                                             action="forged", detail={}))
    engine = db.make_engine(team["alice"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(t.audit.c.user, t.audit.c.action)).all()
    finally:
        engine.dispose()
    assert ("bob", "save mask") in rows and ("bob", "forged") in rows
    assert ("alice", "forged") not in rows


def test_cases_command_refuses_another_name_in_one_line(team, capsys):
    assert main(["cases", "--db", team["bob"], "--user", "alice", "status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "database login 'bob'; the name 'alice' was not used" in err[0]
    assert main(["cases", "--db", team["bob"], "status"]) == 0
    assert "user: bob (annotator)" in capsys.readouterr().out


def test_sqlite_keeps_the_name_it_is_given(tmp_path):
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    with CaseStore.open(url, user="lead") as lead:
        assert (lead.user, lead.role) == ("lead", Role.REVIEWER)
        case = lead.add_case(h.photo(tmp_path))
        lead.set_state(case.id, ReviewState.IN_REVIEW)
        lead.set_state(case.id, ReviewState.SIGNED_OFF)
    with CaseStore.open(url, user="helper") as helper:
        assert helper.role is Role.ANNOTATOR
        with pytest.raises(PermissionDenied):
            helper.set_state(case.id, ReviewState.IN_REVIEW)
        assert helper.audit(limit=1)[0]["user"] == "helper"


def test_a_login_cannot_save_under_another_raters_name_or_rewrite_a_version(team):
    """Migration 0004: by raw SQL bob can neither add a mask version as alice, nor claim
    alice moved a case, nor change or remove a version (the store never does either)."""
    case_id = team["case"]
    with CaseStore.open(team["bob"]) as bob:
        saved = bob.save_mask(case_id, h.box(5, 5, 20, 20), None).version
    with CaseStore.open(team["alice"]) as alice:
        alice.save_mask(case_id, h.box(6, 6, 20, 20), None)
    forged = insert(t.mask_versions).values(
        case_id=case_id, author="alice", created_at=now(), parent_id=None, number=7,
        width=20, height=20, mask_png=b"\x89PNG", area_px=1, source="edit")
    _raw(team["bob"], forged)
    engine = db.make_engine(team["alice"])
    try:
        with engine.connect() as conn:
            authors = conn.execute(select(t.mask_versions.c.author, t.mask_versions.c.number)
                                   .where(t.mask_versions.c.case_id == case_id)).all()
    finally:
        engine.dispose()
    assert ("bob", 7) in authors and ("alice", 7) not in authors
    for statement in (update(t.mask_versions).where(t.mask_versions.c.id == saved.id)
                      .values(area_px=0),
                      t.mask_versions.delete().where(t.mask_versions.c.id == saved.id)):
        # the team's grants have no DELETE either; the trigger holds if someone adds one
        with pytest.raises(DBAPIError, match="never changed|permission denied"):
            _raw(team["bob"], statement)
    _raw(team["bob"], update(t.cases).where(t.cases.c.id == case_id)
         .values(state=ReviewState.CORRECTED.value, state_by="alice"))
    with CaseStore.open(team["alice"]) as alice:
        assert alice.get_case(case_id).state_by == "bob"
