"""Undo/redo over :class:`~lesionviewer.edit.mask_document.MaskDelta` steps, capped by memory.

The app may wrap the same deltas in a QUndoStack; this class is the Qt-free equivalent, used by
tests, scripts and any front end without Qt. Clean/dirty tracking follows QUndoStack: the
state at :meth:`EditHistory.set_clean` is "saved", and undoing back to it makes it clean again.
"""

from __future__ import annotations

from collections import deque

from lesionviewer.edit.mask_document import MaskDelta, MaskDocument
from lesionviewer.edit.summary import EditSummary

DEFAULT_MAX_STEPS = 500
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class EditHistory:
    """Undo and redo stacks of deltas applied to one :class:`MaskDocument`.

    max_steps: most undo steps kept (at least 100 by default: 500).
    max_bytes: most memory the undo and redo steps may hold together; beyond it the oldest
    undo steps are dropped. The newest step is always kept, however large.
    summary: an :class:`EditSummary` kept in step: push/redo record, undo reverts.
    """

    def __init__(
        self,
        document: MaskDocument,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        summary: EditSummary | None = None,
    ) -> None:
        if max_steps < 1 or max_bytes < 1:
            raise ValueError("max_steps and max_bytes must be positive")
        self.document = document
        self.max_steps = int(max_steps)
        self.max_bytes = int(max_bytes)
        self.summary = summary if summary is not None else EditSummary()
        self._undo: deque[MaskDelta] = deque()
        self._redo: list[MaskDelta] = []
        self._nbytes = 0
        # Number of undo steps at the saved state; None when that state can no longer be reached.
        self._clean_index: int | None = 0

    # -- recording ----------------------------------------------------------------------

    def push(self, delta: MaskDelta | None) -> None:
        """Record a delta the document has already applied. None (nothing changed) is ignored.

        Discards the redo steps, like any editor.
        """
        if delta is None:
            return
        if self._clean_index is not None and self._clean_index > len(self._undo):
            self._clean_index = None  # the saved state was on the redo branch being discarded
        for dropped in self._redo:
            self._nbytes -= dropped.nbytes
        self._redo.clear()
        self._undo.append(delta)
        self._nbytes += delta.nbytes
        self.summary.record(delta)
        self._enforce_limits()

    def undo(self) -> MaskDelta | None:
        """Revert the newest step on the document; returns it, or None when there is none."""
        if not self._undo:
            return None
        delta = self._undo.pop()
        self.document.apply(delta, forward=False)
        self._redo.append(delta)
        self.summary.revert(delta)
        return delta

    def redo(self) -> MaskDelta | None:
        """Re-apply the step undone last; returns it, or None when there is none."""
        if not self._redo:
            return None
        delta = self._redo.pop()
        self.document.apply(delta, forward=True)
        self._undo.append(delta)
        self.summary.record(delta)
        return delta

    def clear(self) -> None:
        """Forget every step (e.g. a new image); the current state counts as saved."""
        self._undo.clear()
        self._redo.clear()
        self._nbytes = 0
        self._clean_index = 0

    # -- state --------------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        """Label of the step :meth:`undo` would revert ("brush", ...), for a menu entry."""
        return self._undo[-1].label if self._undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1].label if self._redo else None

    @property
    def undo_count(self) -> int:
        return len(self._undo)

    @property
    def redo_count(self) -> int:
        return len(self._redo)

    @property
    def nbytes(self) -> int:
        """Memory held by all steps (undo and redo)."""
        return self._nbytes

    def is_clean(self) -> bool:
        """True when the document is as it was at the last :meth:`set_clean` (nothing unsaved)."""
        return self._clean_index == len(self._undo)

    def set_clean(self) -> None:
        """Mark the current state as saved."""
        self._clean_index = len(self._undo)

    # -- internals ----------------------------------------------------------------------

    def _enforce_limits(self) -> None:
        while len(self._undo) > 1 and (len(self._undo) > self.max_steps or self._nbytes > self.max_bytes):
            oldest = self._undo.popleft()
            self._nbytes -= oldest.nbytes
            if self._clean_index is not None:
                self._clean_index -= 1
                if self._clean_index < 0:
                    self._clean_index = None
