"""One photo in the case list and what the app knows about it (Qt-free except the thumbnail)."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any


class CaseStatus(str, enum.Enum):
    NEW = "new"
    QUEUED = "queued"
    ANALYSING = "analysing"
    ANALYSED = "analysed"
    EDITED = "edited"
    EXPORTED = "exported"
    ERROR = "error"  # unreadable photo or failed analysis; ``Case.message`` says why


@dataclasses.dataclass(eq=False)
class Case:
    path: Path
    status: CaseStatus = CaseStatus.NEW
    message: str | None = None  # the error, in one sentence
    ged: float | None = None
    malignancy_probability: float | None = None
    malignancy_withheld: str | None = None  # why the figure must not be read (OOD, ...)
    region: tuple[int, int, int, int] | None = None  # (x, y, w, h) analysis box, full-res px
    threshold: float | None = None  # consensus threshold chosen for this case; None: the model's
    size: tuple[int, int] | None = None  # (width, height)
    thumbnail: Any = None  # QImage, set by the thumbnail loader
    progress: float | None = None  # 0..1 while analysing
    edited: bool = False  # the mask differs from the model's (in memory or in the sidecar)
    exported: bool = False
    version: int = 0  # bumped by every edit, undo, redo or region change
    saved_version: int = 0  # the version last written to the sidecar
    pending: Any = dataclasses.field(default=None, repr=False)  # CaseSidecar being saved
    save_error: str | None = None  # why the last save failed
    # from the case store (review_sync.py): ReviewState value, raters with a saved mask, and
    # their disagreement (GED among the raters' newest masks; None with fewer than two)
    review_state: str | None = None
    raters: tuple[str, ...] = ()
    disagreement: float | None = None

    @property
    def unsaved(self) -> bool:
        return self.version != self.saved_version

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def case_id(self) -> str:
        return self.path.stem

    def refresh_status(self) -> None:
        """Derive the status from what is known, keeping errors and running analyses."""
        if self.status in (CaseStatus.ERROR, CaseStatus.ANALYSING, CaseStatus.QUEUED):
            return
        if self.edited:
            self.status = CaseStatus.EXPORTED if self.exported else CaseStatus.EDITED
        elif self.ged is not None:
            self.status = CaseStatus.EXPORTED if self.exported else CaseStatus.ANALYSED
        else:
            self.status = CaseStatus.NEW
