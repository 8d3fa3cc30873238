"""Undo/redo of mask edits: QUndoStack commands that wrap the edit package's MaskDelta.

One command per user action (a whole brush stroke is one delta). The stack keeps at most
``max_steps`` commands and at most ``max_bytes`` of deltas: when a push goes over the byte
budget the oldest commands are dropped (the deltas are bit-packed boxes, so a typical stroke
costs kilobytes and the step cap is what usually applies).
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QUndoCommand, QUndoStack

from lesionviewer.edit.mask_document import MaskDelta, MaskDocument
from lesionviewer.edit.summary import EditSummary

log = logging.getLogger(__name__)

DEFAULT_MAX_STEPS = 500
DEFAULT_MAX_BYTES = 128 * 1024 * 1024  # per case; up to 4 cases keep a history (session.py)


class MaskDeltaCommand(QUndoCommand):
    """Undo/redo of one MaskDelta that was already applied when the command was pushed."""

    def __init__(self, document: MaskDocument, delta: MaskDelta, text: str,
                 summary: EditSummary):
        super().__init__(text)
        self.document = document
        self.delta = delta
        self.summary = summary
        self._skip_first_redo = True  # QUndoStack.push() calls redo(); the edit is already done

    @property
    def nbytes(self) -> int:
        return self.delta.nbytes

    def redo(self) -> None:
        if self._skip_first_redo:
            self._skip_first_redo = False
            return
        self.document.apply(self.delta, forward=True)
        self.summary.record(self.delta)

    def undo(self) -> None:
        self.document.apply(self.delta, forward=False)
        self.summary.revert(self.delta)


def describe(delta: MaskDelta) -> str:
    """Menu text for a delta, e.g. "Brush (+1,204 px)"."""
    parts = []
    if delta.pixels_added:
        parts.append(f"+{delta.pixels_added:,} px")
    if delta.pixels_removed:
        parts.append(f"-{delta.pixels_removed:,} px")
    return f"{delta.label.capitalize()} ({', '.join(parts) or 'no change'})"


class MaskUndoStack(QUndoStack):
    """A QUndoStack for one case's mask, capped by step count and by delta memory."""

    def __init__(self, document: MaskDocument, parent=None, *, max_steps: int = DEFAULT_MAX_STEPS,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        super().__init__(parent)
        self.document = document
        self.summary = EditSummary()  # counts of the edits currently applied, for exports
        self.max_bytes = max_bytes
        self.setUndoLimit(max_steps)  # must be set while the stack is empty

    def push_delta(self, delta: MaskDelta | None) -> None:
        if delta is None:
            return
        self.summary.record(delta)
        self.push(MaskDeltaCommand(self.document, delta, describe(delta), self.summary))
        self._enforce_byte_budget()

    def reset_history(self, summary: EditSummary | None = None) -> None:
        """Forget every step (the mask underneath was replaced), optionally with new counts."""
        self.clear()
        self.summary = summary or EditSummary()

    def nbytes(self) -> int:
        return sum(getattr(self.command(i), "nbytes", 0) for i in range(self.count()))

    def _enforce_byte_budget(self) -> None:
        if self.nbytes() <= self.max_bytes or self.index() != self.count():
            return
        # QUndoStack cannot drop its oldest commands, so rebuild it from the newest ones that
        # fit the budget (all are applied: index == count), without re-applying them.
        deltas = [self.command(i).delta for i in range(self.count())]
        kept, total = [], 0
        for d in reversed(deltas):
            if kept and total + d.nbytes > self.max_bytes:
                break
            kept.append(d)
            total += d.nbytes
        log.info("undo history over %d bytes: dropping the %d oldest steps",
                 self.max_bytes, len(deltas) - len(kept))
        self.clear()
        for d in reversed(kept):
            self.push(MaskDeltaCommand(self.document, d, describe(d), self.summary))
