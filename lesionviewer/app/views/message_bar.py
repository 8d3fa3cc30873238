"""Non-modal messages: a dismissable bar over the photo, a permanent banner, the progress strip."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QSizePolicy, QToolButton, QWidget)

log = logging.getLogger(__name__)

_STYLES = {
    "info": "background:#1f3b57; color:#e8f1fb; border:1px solid #3a6ea5;",
    "warning": "background:#4d3b12; color:#fff4d6; border:1px solid #b8860b;",
    "error": "background:#5a1f1f; color:#ffe5e5; border:1px solid #c9302c;",
}


class MessageBar(QFrame):
    """One message at a time with optional action buttons; a newer message replaces it.

    Errors stay until dismissed; info messages too (nothing disappears while the user looks
    away), but they never block the window.
    """

    dismissed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.level = "info"
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self._buttons: list[QPushButton] = []
        close = QToolButton(text="✕", autoRaise=True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(8, 4, 4, 4)
        self._layout.addWidget(self.text, 1)
        self._layout.addWidget(close)
        self.hide()

    def show_message(self, text: str, level: str = "info",
                     actions: list[tuple[str, Callable[[], None]]] | None = None) -> None:
        getattr(log, "error" if level == "error" else "info")("message: %s", text)
        self.level = level
        self.setStyleSheet(f"MessageBar {{{_STYLES[level]} border-radius:3px;}} "
                           f"QLabel {{{_STYLES[level].split(' border')[0]} border:none;}}")
        self.text.setText(text)
        for b in self._buttons:
            b.deleteLater()
        self._buttons = []
        for label, callback in actions or []:
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, cb=callback: (self.dismiss(), cb()))
            self._layout.insertWidget(self._layout.count() - 1, button)
            self._buttons.append(button)
        self.show()

    def dismiss(self) -> None:
        self.hide()
        self.dismissed.emit()

    def dismiss_offers(self) -> None:
        """Hide a message whose buttons act on the case on screen (it is about to change)."""
        if self._buttons and self.isVisible():
            self.dismiss()

    def message(self) -> str:
        return self.text.text() if self.isVisible() else ""


class Banner(QLabel):
    """A permanent strip for a state the user must know about (no model installed)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.setStyleSheet("background:#5a1f1f; color:#ffe5e5; padding:6px; font-weight:600;")
        self.hide()

    def set_text(self, text: str | None) -> None:
        self.setText(text or "")
        self.setVisible(bool(text))


class AnalysisProgress(QWidget):
    """Status-bar strip: "ISIC_0000068 · DenseCRF 2/4 · about 3 s left" + bar + Cancel."""

    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.owner = "analysis"  # what Cancel stops: "analysis" or "export"
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(160)
        self.bar.setTextVisible(True)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop what this strip shows: the analyses (running and queued) "
                               "or the export")
        self.cancel.clicked.connect(self.cancel_requested)
        self.cancel.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel)
        self.hide()

    def show_step(self, name: str, step: int, total: int, stage: str,
                  remaining_s: float | None, queued: int) -> None:
        # QProgressBar.setValue repaints synchronously (~10 ms offscreen): only on a change
        if (self.bar.minimum(), self.bar.maximum()) != (0, max(total, 1)):
            self.bar.setRange(0, max(total, 1))
        if self.bar.value() != step:
            self.bar.setValue(step)
        if remaining_s is None or remaining_s <= 0 or step >= total:
            left = ""
        else:
            left = f", about {remaining_s:.0f} s left" if remaining_s >= 1.5 else ", <2 s left"
        more = f" (+{queued} queued)" if queued else ""
        self.label.setText(f"{name}: {stage}{left}{more}")
        self.show()

    def show_waiting(self, text: str) -> None:
        self.bar.setRange(0, 0)  # busy indicator
        self.label.setText(text)
        self.show()

    def done(self) -> None:
        self.hide()
