"""PostgreSQL: sign-off and roles are checked by the server against the database login.

On a team store the store's user is the database login (``session_user``). These triggers
make the reviewer permission hold for any client, raw SQL included:

* ``cases``: moving a case to or away from "signed off" (or inserting one signed off) needs
  ``session_user`` to be a reviewer in ``users``;
* ``users``: adding or changing a user needs a reviewer, except a login adding itself as an
  annotator, or as the reviewer when the table is empty (the first user of a fresh store);
* ``audit``: every entry records ``session_user`` as its user, whatever the client wrote.

The table owner can still disable triggers (as it can do anything to its tables); give the
team's people their own logins, not the owner's. SQLite (one desk) is unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Fixed statements, no value from outside.
_IS_REVIEWER = """
CREATE FUNCTION lesionviewer_is_reviewer() RETURNS boolean AS $$
    SELECT EXISTS (SELECT 1 FROM users WHERE name = session_user AND role = 'reviewer')
$$ LANGUAGE sql STABLE
"""
_CASES_GUARD = """
CREATE FUNCTION lesionviewer_cases_sign_off_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state = 'signed off' AND NOT lesionviewer_is_reviewer() THEN
            RAISE EXCEPTION 'only a reviewer may sign off (% is not a reviewer)', session_user
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF (NEW.state = 'signed off') <> (OLD.state = 'signed off')
            AND NOT lesionviewer_is_reviewer() THEN
        RAISE EXCEPTION 'only a reviewer may sign off or reopen a case (% is not a reviewer)',
            session_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""
_USERS_GUARD = """
CREATE FUNCTION lesionviewer_users_guard() RETURNS trigger AS $$
BEGIN
    IF lesionviewer_is_reviewer() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' AND NEW.name = session_user AND (NEW.role = 'annotator'
            OR (NEW.role = 'reviewer' AND NOT EXISTS (SELECT 1 FROM users))) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'only a reviewer may add users or change roles (% is not a reviewer)',
        session_user USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
_AUDIT_LOGIN = """
CREATE FUNCTION lesionviewer_audit_login() RETURNS trigger AS $$
BEGIN
    NEW."user" := session_user;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""
_TRIGGERS = {
    "cases_sign_off_guard": "BEFORE INSERT OR UPDATE ON cases FOR EACH ROW "
                            "EXECUTE FUNCTION lesionviewer_cases_sign_off_guard()",
    "users_reviewer_guard": "BEFORE INSERT OR UPDATE ON users FOR EACH ROW "
                            "EXECUTE FUNCTION lesionviewer_users_guard()",
    "audit_records_login": "BEFORE INSERT ON audit FOR EACH ROW "
                           "EXECUTE FUNCTION lesionviewer_audit_login()",
}
_FUNCTIONS = ("lesionviewer_cases_sign_off_guard()", "lesionviewer_users_guard()",
              "lesionviewer_audit_login()", "lesionviewer_is_reviewer()")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in (_IS_REVIEWER, _CASES_GUARD, _USERS_GUARD, _AUDIT_LOGIN):
        op.execute(function)
    for name, body in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, body in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {body.split(' ON ')[1].split()[0]}")
    for function in _FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
