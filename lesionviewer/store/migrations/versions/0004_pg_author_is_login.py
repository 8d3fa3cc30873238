"""PostgreSQL: a mask version is recorded under the login that saved it, and never changed.

0003 made sign-off and roles the server's business; a login could still, by raw SQL, insert a
mask version under another rater's name, set ``state_by`` to someone else, or rewrite a
version. For every login but the tables' owner (who can disable triggers anyway, and whose
bulk loads keep their authors):

* ``mask_versions``: INSERT records ``session_user`` as the author; UPDATE and DELETE are
  refused (versions are only ever added, the store never changes one);
* ``cases``: a change of review state (or of who made it) records ``session_user`` as
  ``state_by``.

SQLite (one desk) is unchanged: there the user is whoever runs the program.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Fixed statements, no value from outside.
_IS_OWNER = """
CREATE FUNCTION lesionviewer_is_owner(name) RETURNS boolean AS $$
    SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema()
                   AND tablename = $1 AND tableowner = session_user)
$$ LANGUAGE sql STABLE
"""
_VERSIONS_GUARD = """
CREATE FUNCTION lesionviewer_mask_versions_guard() RETURNS trigger AS $$
BEGIN
    IF lesionviewer_is_owner('mask_versions') THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.author := session_user;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'mask versions are never changed or removed (% tried to)', session_user
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
_STATE_BY = """
CREATE FUNCTION lesionviewer_cases_state_by() RETURNS trigger AS $$
BEGIN
    IF NOT lesionviewer_is_owner('cases')
            AND (TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state
                 OR NEW.state_by IS DISTINCT FROM OLD.state_by) THEN
        NEW.state_by := session_user;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""
_TRIGGERS = {
    "mask_versions_author_is_login": ("mask_versions", "BEFORE INSERT OR UPDATE OR DELETE ON mask_versions "
                                      "FOR EACH ROW EXECUTE FUNCTION lesionviewer_mask_versions_guard()"),
    "cases_state_by_is_login": ("cases", "BEFORE INSERT OR UPDATE ON cases FOR EACH ROW "
                                "EXECUTE FUNCTION lesionviewer_cases_state_by()"),
}
_FUNCTIONS = ("lesionviewer_mask_versions_guard()", "lesionviewer_cases_state_by()",
              "lesionviewer_is_owner(name)")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in (_IS_OWNER, _VERSIONS_GUARD, _STATE_BY):
        op.execute(function)
    for name, (_, body) in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, _) in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for function in _FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
