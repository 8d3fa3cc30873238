"""SQLite refuses UPDATE and DELETE on the audit log too, as PostgreSQL has since 0001.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_GUARDS = {
    "audit_no_update": "BEFORE UPDATE",
    "audit_no_delete": "BEFORE DELETE",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, when in _GUARDS.items():  # fixed statements, no value from outside
        op.execute(f"CREATE TRIGGER {name} {when} ON audit "
                   f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in _GUARDS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
