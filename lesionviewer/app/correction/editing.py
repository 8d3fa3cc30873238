"""The mask on screen as an editable thing: MaskDocument + its undo stack + the model's mask.

Tools call the editor; the editor changes the document; the overlays listen to the editor's
``mask_changed`` (napari's layer/controls split, STYLE.md habit 7). ``edited`` compares the
document with the model's mask, so undoing every edit makes the case "analysed" again.
A read-only editor (:meth:`MaskEditor.set_read_only`: the case is signed off) refuses every
edit and ignores new model masks; the mask on screen stays as it was.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from lesionviewer.app.correction.undo import MaskUndoStack
from lesionviewer.edit.mask_document import MaskDocument, Stroke


class MaskEditor(QObject):
    mask_changed = Signal(object)  # (y0, y1, x0, x1) half-open box that changed
    edited_changed = Signal(bool)
    step_done = Signal()  # an edit, undo or redo finished: time to autosave

    def __init__(self, document: MaskDocument, model_mask: np.ndarray, parent=None,
                 edited: bool | None = None, **undo_caps):
        """``edited``: whether the document differs from ``model_mask``, when the caller knows
        (comparing two 50 MP masks on the GUI thread is not free); None compares them."""
        super().__init__(parent)
        self.document = document
        self.model_mask = np.asarray(model_mask, dtype=bool)
        self.undo_stack = MaskUndoStack(document, self, **undo_caps)
        self.edited = (not np.array_equal(document.mask, self.model_mask) if edited is None
                       else bool(edited))
        self.read_only: str | None = None  # why the mask cannot be edited now (one line)
        document.add_listener(self._on_document_changed)
        self.undo_stack.indexChanged.connect(self._after_step)

    @property
    def mask(self) -> np.ndarray:
        """HxW bool, read-only view of the current mask."""
        return self.document.mask

    def attach(self) -> None:
        """Listen to the document again (the case is back on screen)."""
        self.detach()
        self.document.add_listener(self._on_document_changed)

    def detach(self) -> None:
        """Stop listening to the document (the case is leaving the screen)."""
        try:
            self.document.remove_listener(self._on_document_changed)
        except ValueError:
            pass

    def set_read_only(self, reason: str | None) -> None:
        """Refuse edits (and undo/redo) while ``reason`` is set; None allows them again."""
        self.read_only = reason
        if self.undo_stack.isActive() != (reason is None):  # undo/redo would change it too
            self.undo_stack.setActive(reason is None)  # (in the window's undo group)

    # --- edits (each one undo step; none while read-only) ----------------------------------
    def begin_stroke(self, radius: float, value: bool) -> Stroke:
        if self.read_only is not None:
            raise PermissionError(self.read_only)  # the tools check first
        return self.document.begin_stroke(radius, value)

    def end_stroke(self, stroke: Stroke) -> None:
        self._push(stroke.finish())

    def fill_polygon(self, points, value: bool) -> None:
        if self.read_only is None:
            self._push(self.document.fill_polygon(points, value))

    def fill_holes(self) -> None:
        if self.read_only is None:
            self._push(self.document.fill_holes())

    def keep_largest_region(self) -> None:
        if self.read_only is None:
            self._push(self.document.keep_largest_region())

    def reset_to_model(self) -> None:
        if self.read_only is None:
            self._push(self.document.reset_to(self.model_mask, "reset to model"))

    def replace_model_mask(self, model_mask: np.ndarray, keep_edits: bool) -> None:
        """New model mask (the threshold moved).

        Unedited: the document follows silently and the (empty or redo-only) history is cleared,
        since its deltas were taken against the old mask. Edited and ``keep_edits`` False: the
        switch is one undoable step, so the edits come back with Undo.
        """
        if self.read_only is not None:
            return  # the signed-off mask stays; the next threshold move after reopening applies
        model_mask = np.asarray(model_mask, dtype=bool)
        if self.edited and keep_edits:
            self.model_mask = model_mask
            self._after_step()
            return
        if not self.edited:
            if np.array_equal(model_mask, self.model_mask):
                return  # nothing changed: keep the history (a redo may still be wanted)
            self.model_mask = model_mask
            self.document.reset_to(model_mask)
            self.undo_stack.reset_history()
            self._after_step()
        else:
            self.model_mask = model_mask
            self._push(self.document.reset_to(model_mask, "threshold"))

    def _push(self, delta) -> None:
        if delta is None:
            return
        self.undo_stack.push_delta(delta)

    # --- listeners -------------------------------------------------------------------------
    def _on_document_changed(self, bbox) -> None:
        self.mask_changed.emit(bbox)

    def _after_step(self, *_) -> None:
        edited = not np.array_equal(self.document.mask, self.model_mask)
        if edited != self.edited:
            self.edited = edited
            self.edited_changed.emit(edited)
        self.step_done.emit()
