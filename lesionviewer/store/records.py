"""What the case store hands out: frozen records, never live database rows."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from lesionviewer.store.masks import decode_mask
from lesionviewer.store.states import ReviewState


@dataclasses.dataclass(frozen=True)
class CaseRecord:
    """One case. width/height: the photo's pixel size as the app shows it (EXIF orientation
    applied), None when unknown. labels: free JSON (e.g. {"diagnosis": "melanoma"}).
    row_version: +1 on every change of the case row."""

    id: int
    photo_uri: str
    content_sha256: str
    width: int | None
    height: int | None
    labels: dict[str, Any]
    state: ReviewState
    state_by: str | None
    state_at: _dt.datetime | None
    state_comment: str | None
    size_bytes: int | None = None
    row_version: int = 1


@dataclasses.dataclass(frozen=True)
class MaskVersion:
    """One saved mask of one rater. mask: HxW bool (True = lesion). number: 1, 2, ... within
    (case, author). parent_id: the version the edit started from (None: from scratch)."""

    id: int
    case_id: int
    author: str
    created_at: _dt.datetime
    parent_id: int | None
    number: int
    mask: np.ndarray = dataclasses.field(repr=False, compare=False)
    source: str = "edit"


@dataclasses.dataclass(frozen=True)
class SaveResult:
    """What :meth:`CaseStore.save_mask` stored. conflict: the newer version this save was
    based past (saved meanwhile by another program or user); both are kept. None: clean."""

    version: MaskVersion
    conflict: MaskVersion | None


@dataclasses.dataclass(frozen=True)
class QueueRow:
    """One line of the review queue. ged / malignancy: the newest analysis (malignancy None
    when withheld or absent). disagreement: GED among the raters' newest masks (0..1), None
    with fewer than two raters."""

    case_id: int
    photo_uri: str
    state: ReviewState
    ged: float | None
    malignancy: float | None
    disagreement: float | None
    raters: int
    last_author: str | None


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How the raters' newest masks of a case agree. pairwise_dice: {(a, b): Dice} for a < b
    by name. ged: mean pairwise 1 - IoU among them (0 = identical), the same measure as the
    model's GED among its samples. consensus: HxW bool, the pixels at least half of the raters
    marked (mean vote >= 0.5, as the model's consensus of its samples). method: how the
    consensus was made ("majority vote")."""

    raters: list[str]
    pairwise_dice: dict[tuple[str, str], float]
    ged: float
    consensus: np.ndarray = dataclasses.field(repr=False, compare=False)
    method: str = "majority vote"


@dataclasses.dataclass
class ImportReport:
    """What :meth:`CaseStore.import_sidecars` did. imported: sidecar files taken in; skipped:
    already in the store; problems: (file, one-line reason) not imported (the files are left
    as they are); notes: (file, what was not carried over, e.g. a "reviewed" status imported
    by an annotator); case_ids: the cases they belong to."""

    imported: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[Path] = dataclasses.field(default_factory=list)
    problems: list[tuple[Path, str]] = dataclasses.field(default_factory=list)
    case_ids: list[int] = dataclasses.field(default_factory=list)
    notes: list[tuple[Path, str]] = dataclasses.field(default_factory=list)


def utc(value: _dt.datetime | None) -> _dt.datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=_dt.timezone.utc)


def case_record(row) -> CaseRecord:
    return CaseRecord(id=row.id, photo_uri=row.photo_uri, content_sha256=row.content_sha256,
                      width=row.width, height=row.height, labels=dict(row.labels or {}),
                      state=ReviewState(row.state), state_by=row.state_by,
                      state_at=utc(row.state_at), state_comment=row.state_comment,
                      size_bytes=row.size_bytes, row_version=row.row_version)


def mask_version(row) -> MaskVersion:
    return MaskVersion(id=row.id, case_id=row.case_id, author=row.author,
                       created_at=utc(row.created_at), parent_id=row.parent_id,
                       number=row.number, mask=decode_mask(row.mask_png, (row.height, row.width)),
                       source=row.source)
