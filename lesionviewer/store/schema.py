"""The case store's tables (SQLAlchemy 2 declarative), one schema for SQLite and PostgreSQL.

The tables are created and changed only by the Alembic migrations in ``migrations/``; this
module is what the code reads and writes through, and a test checks that the two agree.

The review queue sorts 100,000 cases within 200 ms because its sort keys live on the case
row and are indexed: ``queue_uncertainty`` (the model's: 1 + GED when the model withheld its
malignancy figure, GED otherwise, -1 before any analysis) and ``queue_disagreement`` (GED
among the raters' newest masks, -1 with fewer than two raters), each also behind ``state``.
Both are kept up to date in the same transaction as the analysis or mask that changes them.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer,
                        LargeBinary, MetaData, SmallInteger, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names fixed by convention, so migrations name them the same on both backends.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
USER_NAME = 128
#: 64-bit ids on PostgreSQL; SQLite's rowid alias must be declared INTEGER to autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, _dt.datetime: DateTime(timezone=True)}


class User(Base):
    """Someone who writes to the store (their OS login unless changed) and their role."""

    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(USER_NAME), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # Role.value
    created_at: Mapped[_dt.datetime]
    created_by: Mapped[str | None] = mapped_column(String(USER_NAME))


class Case(Base):
    """One photo (identified by its bytes' SHA-256), its review state and queue sort keys."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    photo_uri: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int | None]
    height: Mapped[int | None]
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    labels: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))  # ReviewState.value
    state_rank: Mapped[int] = mapped_column(SmallInteger)  # ReviewState.rank
    state_by: Mapped[str | None] = mapped_column(String(USER_NAME))
    state_at: Mapped[_dt.datetime | None]
    state_comment: Mapped[str | None] = mapped_column(Text)
    row_version: Mapped[int]  # +1 on every change of the row
    created_at: Mapped[_dt.datetime]
    created_by: Mapped[str] = mapped_column(String(USER_NAME))
    ged: Mapped[float | None] = mapped_column(Float)  # newest analysis
    malignancy: Mapped[float | None] = mapped_column(Float)  # None when withheld
    queue_uncertainty: Mapped[float] = mapped_column(Float)
    disagreement: Mapped[float | None] = mapped_column(Float)
    queue_disagreement: Mapped[float] = mapped_column(Float)
    raters: Mapped[int]
    last_author: Mapped[str | None] = mapped_column(String(USER_NAME))

    __table_args__ = (
        Index("ix_cases_queue_uncertainty", "queue_uncertainty", "id"),
        Index("ix_cases_queue_disagreement", "queue_disagreement", "id"),
        Index("ix_cases_state_uncertainty", "state", "queue_uncertainty", "id"),
        Index("ix_cases_state_disagreement", "state", "queue_disagreement", "id"),
        Index("ix_cases_state_rank", "state_rank", "id"),
        Index("ix_cases_photo_uri", "photo_uri"),
    )


class AnalysisRow(Base):
    """One analysis of a case (the newest counts); ``summary`` keeps the whole report."""

    __tablename__ = "analyses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    author: Mapped[str] = mapped_column(String(USER_NAME))
    created_at: Mapped[_dt.datetime]
    model_id: Mapped[str | None] = mapped_column(String(200))
    settings: Mapped[dict[str, Any] | None]
    ged: Mapped[float | None] = mapped_column(Float)
    ged_level: Mapped[str | None] = mapped_column(String(16))
    malignancy: Mapped[float | None] = mapped_column(Float)
    malignancy_low: Mapped[float | None] = mapped_column(Float)
    malignancy_high: Mapped[float | None] = mapped_column(Float)
    withheld_reason: Mapped[str | None] = mapped_column(Text)
    ood: Mapped[bool | None] = mapped_column(Boolean)
    ood_score: Mapped[float | None] = mapped_column(Float)
    maps_uri: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any]]

    __table_args__ = (Index("ix_analyses_case", "case_id", "id"),)


class MaskVersionRow(Base):
    """One saved mask of one rater: inserted, never updated. ``number`` counts the rater's
    versions of the case from 1; ``parent_id`` is the version the edit started from."""

    __tablename__ = "mask_versions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    author: Mapped[str] = mapped_column(String(USER_NAME))
    created_at: Mapped[_dt.datetime]
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("mask_versions.id"))
    number: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    area_px: Mapped[int] = mapped_column(BigInteger)
    mask_png: Mapped[bytes] = mapped_column(LargeBinary)  # 1-bit PNG (masks.py)
    source: Mapped[str] = mapped_column(String(64))  # "edit", "offline", "sidecar"

    __table_args__ = (
        UniqueConstraint("case_id", "author", "number", name="uq_mask_versions_line"),
        Index("ix_mask_versions_case_author", "case_id", "author", "id"),
        Index("ix_mask_versions_author_case", "author", "case_id"),
    )


class AuditRow(Base):
    """Append-only log of every write: who, when, what, on which case. No code path updates
    or deletes it; on PostgreSQL a trigger refuses both."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[_dt.datetime]
    user: Mapped[str] = mapped_column(String(USER_NAME))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]

    __table_args__ = (Index("ix_audit_case", "case_id", "id"),)


class Imported(Base):
    """What :meth:`CaseStore.import_sidecars` has taken in (``sidecar:<photo sha>:<save id>``),
    so importing the same files again adds nothing."""

    __tablename__ = "imports"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    at: Mapped[_dt.datetime]
    user: Mapped[str] = mapped_column(String(USER_NAME))


users = User.__table__
cases = Case.__table__
analyses = AnalysisRow.__table__
mask_versions = MaskVersionRow.__table__
audit = AuditRow.__table__
imports = Imported.__table__
