"""The case store's first schema: users, cases, analyses, mask versions, audit, imports.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = sa.String(128)
WHEN = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# PostgreSQL refuses any UPDATE or DELETE of an audit row, whoever asks (a fixed statement,
# no value from outside).
_AUDIT_GUARD = """
CREATE FUNCTION lesionviewer_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""
_AUDIT_TRIGGER = """
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION lesionviewer_audit_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", NAME, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", NAME),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("photo_uri", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("size_bytes", sa.BigInteger()),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_rank", sa.SmallInteger(), nullable=False),
        sa.Column("state_by", NAME),
        sa.Column("state_at", WHEN),
        sa.Column("state_comment", sa.Text()),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", NAME, nullable=False),
        sa.Column("ged", sa.Float()),
        sa.Column("malignancy", sa.Float()),
        sa.Column("queue_uncertainty", sa.Float(), nullable=False),
        sa.Column("disagreement", sa.Float()),
        sa.Column("queue_disagreement", sa.Float(), nullable=False),
        sa.Column("raters", sa.Integer(), nullable=False),
        sa.Column("last_author", NAME),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("content_sha256", name="uq_cases_content_sha256"),
    )
    for name, columns in (("ix_cases_queue_uncertainty", ["queue_uncertainty", "id"]),
                          ("ix_cases_queue_disagreement", ["queue_disagreement", "id"]),
                          ("ix_cases_state_uncertainty", ["state", "queue_uncertainty", "id"]),
                          ("ix_cases_state_disagreement", ["state", "queue_disagreement", "id"]),
                          ("ix_cases_state_rank", ["state_rank", "id"]),
                          ("ix_cases_photo_uri", ["photo_uri"])):
        op.create_index(name, "cases", columns)
    op.create_table(
        "analyses",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author", NAME, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("model_id", sa.String(200)),
        sa.Column("settings", sa.JSON()),
        sa.Column("ged", sa.Float()),
        sa.Column("ged_level", sa.String(16)),
        sa.Column("malignancy", sa.Float()),
        sa.Column("malignancy_low", sa.Float()),
        sa.Column("malignancy_high", sa.Float()),
        sa.Column("withheld_reason", sa.Text()),
        sa.Column("ood", sa.Boolean()),
        sa.Column("ood_score", sa.Float()),
        sa.Column("maps_uri", sa.Text()),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_analyses"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_analyses_case_id_cases"),
    )
    op.create_index("ix_analyses_case", "analyses", ["case_id", "id"])
    op.create_table(
        "mask_versions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author", NAME, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("parent_id", BIG_ID),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("area_px", sa.BigInteger(), nullable=False),
        sa.Column("mask_png", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mask_versions"),
        sa.UniqueConstraint("case_id", "author", "number", name="uq_mask_versions_line"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_mask_versions_case_id_cases"),
        sa.ForeignKeyConstraint(["parent_id"], ["mask_versions.id"],
                                name="fk_mask_versions_parent_id_mask_versions"),
    )
    op.create_index("ix_mask_versions_case_author", "mask_versions", ["case_id", "author", "id"])
    op.create_index("ix_mask_versions_author_case", "mask_versions", ["author", "case_id"])
    op.create_table(
        "audit",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("user", NAME, nullable=False),
        sa.Column("case_id", sa.Integer()),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_audit_case_id_cases"),
    )
    op.create_index("ix_audit_case", "audit", ["case_id", "id"])
    op.create_table(
        "imports",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("user", NAME, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_imports"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_imports_case_id_cases"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_AUDIT_GUARD)
        op.execute(_AUDIT_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
        op.execute("DROP FUNCTION IF EXISTS lesionviewer_audit_append_only()")
    for table in ("imports", "audit", "mask_versions", "analyses", "cases", "users"):
        op.drop_table(table)
