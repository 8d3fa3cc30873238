"""A signed-off case is read-only in the app, for every user: the editing tools (brush,
eraser, polygons, fill, keep largest, reset, undo/redo) are disabled, the threshold no longer
replaces the mask, and a one-line banner says who signed it off, when, and how to edit it
again (a reviewer reopens it in the Review panel). The mask on screen, and the sidecar
beside the photo, stay as they were; reopening enables the tools again.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from lesionviewer.app.views.message_bar import Banner
from lesionviewer.app.review.review_panel import SIGNED_OFF, when
from lesionviewer.app.correction.tools import EDIT_TOOLS, Tool
from lesionviewer.store.states import ReviewState

LOCK_STYLE = "background:#1f3a4d; color:#e5f3ff; padding:6px; font-weight:600;"


def signed_off_text(record=None) -> str:
    """The banner's line for a signed-off case (``record``: its CaseRecord, when read)."""
    by = ""
    if record is not None and record.state_by:
        by = f" by {record.state_by} on {when(record.state_at)}"
    return f"Signed off{by} — reopen it in the Review panel to edit"


class EditLock(QObject):
    """Keeps the editing tools in step with the review state of the case on screen."""

    def __init__(self, window, sync, parent=None):
        super().__init__(parent)
        self.window, self.sync = window, sync
        self.banner = Banner()
        self.banner.setStyleSheet(LOCK_STYLE)
        window.centralWidget().layout().insertWidget(2, self.banner)  # below the offline one
        self.reason: str | None = None
        session = window.session
        for signal in (sync.review_ready, session.case_shown, session.result_ready,
                       window.view.editor_changed):
            signal.connect(lambda *_: self.update())
        session.cases.dataChanged.connect(lambda *_: self.update())

    def reason_now(self) -> str | None:
        """Why the case on screen cannot be edited (it is signed off), or None."""
        cur = self.window.session.current
        if cur is None:
            return None
        review = self.sync.review
        if review is not None and review.path == cur.case.path:
            return signed_off_text(review.record) \
                if review.record.state is ReviewState.SIGNED_OFF else None
        # not read from the store yet: the state last known in the case list
        return signed_off_text() if cur.case.review_state == SIGNED_OFF else None

    def update(self) -> None:
        reason = self.reason_now()
        cur = self.window.session.current
        if cur is not None and cur.editor is not None:
            cur.editor.set_read_only(reason)  # also after the window made its undo stack active
        w = self.window
        tools = w.actions.tools
        for tool in EDIT_TOOLS:
            tools[tool].setEnabled(reason is None)
            tools[tool].setToolTip(reason or tools[tool].statusTip())
        if reason is not None and reason != self.reason and w.tools.tool in EDIT_TOOLS:
            w.tools.set_tool(Tool.PAN)
        w._update_actions()  # fill holes, keep largest, reset follow the editor's read_only
        self.banner.set_text(reason)
        self.reason = reason
