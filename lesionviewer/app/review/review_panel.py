"""The Review panel: the case's review state and its moves, sign-off with a comment, who drew
the mask on screen, the raters with their latest versions and their agreement, "compare
raters", and the case's audit trail.

A view only: it shows a :class:`~lesionviewer.app.review.review_sync.CaseReview` snapshot and asks
for moves through signals; :class:`~lesionviewer.app.review.review_sync.ReviewSync` does the store
calls (off the GUI thread) and decides what is allowed.
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from lesionviewer.store.states import ALLOWED, ReviewState  # no SQLAlchemy behind these

# The panel's buttons and the case list go by the states' values (what Case.review_state holds)
SIGNED_OFF, IN_REVIEW = ReviewState.SIGNED_OFF.value, ReviewState.IN_REVIEW.value
MOVE_LABELS = {  # button text for a move *to* the state
    ReviewState.ANALYSED.value: "Back to analysed",
    IN_REVIEW: "Start review",
    ReviewState.CORRECTED.value: "Mark corrected",
}
SIGN_OFF_NEEDS_REVIEWER = "Signing off needs the reviewer role"


def when(stamp) -> str:
    """A store time stamp (aware or naive UTC datetime) in local time, to the minute."""
    if stamp is None:
        return "–"
    if isinstance(stamp, str):
        return stamp
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.astimezone().strftime("%d %b %H:%M")


def _label(wrap: bool = True) -> QLabel:
    label = QLabel("–")
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return label


class ReviewPanel(QWidget):
    state_requested = Signal(str, str)  # ReviewState value, comment
    compare_toggled = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.review = None
        self.identity = None
        self.online = True
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self._state_box())
        layout.addWidget(self._raters_box())
        layout.addWidget(self._audit_box())
        layout.addStretch(1)
        self.show_review(None)

    # --- construction ----------------------------------------------------------------------
    def _state_box(self) -> QGroupBox:
        box = QGroupBox("This case")  # the dock around the panel is titled "Review"
        form = QFormLayout(box)
        self.state = _label()
        self.drawn_by = _label()
        self.drawn_by.setToolTip("Who drew the mask on screen, and when it was last saved")
        self.store_line = _label()
        self.store_line.setStyleSheet("color: gray; font-size: 11px;")
        form.addRow("State", self.state)
        form.addRow("Mask drawn by", self.drawn_by)
        self.move_row = QHBoxLayout()
        self.move_buttons: dict[str, QPushButton] = {}
        for target, text in MOVE_LABELS.items():
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, t=target: self._request(t))
            self.move_buttons[target] = button
            self.move_row.addWidget(button)
        self.move_row.addStretch(1)
        form.addRow(self.move_row)
        self.comment = QLineEdit(placeholderText="Comment (kept with the sign-off)")
        self.sign_off = QPushButton("Sign off")
        self.sign_off.clicked.connect(lambda: self._request(SIGNED_OFF))
        self.reopen = QPushButton("Reopen")
        self.reopen.clicked.connect(lambda: self._request(IN_REVIEW))
        sign_row = QHBoxLayout()
        sign_row.addWidget(self.comment, 1)
        sign_row.addWidget(self.sign_off)
        sign_row.addWidget(self.reopen)
        form.addRow(sign_row)
        self.permission = _label()
        self.permission.setStyleSheet("color: gray;")
        form.addRow(self.permission)
        form.addRow(self.store_line)
        return box

    def _raters_box(self) -> QGroupBox:
        box = QGroupBox("Raters")
        layout = QVBoxLayout(box)
        self.raters = QTableWidget(0, 3)
        self.raters.setHorizontalHeaderLabels(["Rater", "Version", "Saved"])
        self.raters.verticalHeader().setVisible(False)
        self.raters.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.raters.setSelectionMode(QAbstractItemView.NoSelection)
        self.raters.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.raters.setMaximumHeight(130)
        self.agreement = _label()
        self.agreement.setToolTip("Dice overlap of each pair of raters' latest masks (1 = the "
                                  "same mask), and the generalized energy distance among them "
                                  "(0 = they agree)")
        self.compare = QCheckBox("Compare raters (outlines on the photo)")
        self.compare.toggled.connect(self.compare_toggled)
        layout.addWidget(self.raters)
        layout.addWidget(self.agreement)
        layout.addWidget(self.compare)
        return box

    def _audit_box(self) -> QGroupBox:
        box = QGroupBox("Audit trail")
        layout = QVBoxLayout(box)
        self.audit = QListWidget()
        self.audit.setMaximumHeight(160)
        self.audit.setWordWrap(True)
        layout.addWidget(self.audit)
        return box

    # --- state in --------------------------------------------------------------------------
    def set_identity(self, identity) -> None:
        """StoreIdentity (url, user, role) or None while no store is open."""
        self.identity = identity
        if identity is not None:
            self.store_line.setText(f"{identity.user} ({identity.role.value}) · {identity.url}")
        self._update_controls()

    def set_online(self, online: bool) -> None:
        self.online = online
        self._update_controls()

    def set_drawn_by(self, text: str) -> None:
        self.drawn_by.setText(text)

    def show_review(self, review) -> None:
        """A CaseReview snapshot of the case on screen, or None (no case, or not known yet)."""
        self.review = review
        self.raters.setRowCount(0)
        self.audit.clear()
        if review is None:
            self.state.setText("–")
            self.agreement.setText("–")
            self._update_controls()
            return
        record = review.record
        text = record.state.value
        if record.state_by:
            text += f" (by {record.state_by}, {when(record.state_at)})"
        if record.state_comment:
            text += f": “{record.state_comment}”"
        self.state.setText(text)
        for version in review.versions:
            row = self.raters.rowCount()
            self.raters.insertRow(row)
            for col, value in enumerate((version.author, str(version.number),
                                         when(version.created_at))):
                self.raters.setItem(row, col, QTableWidgetItem(value))
        self.agreement.setText(agreement_text(review.agreement, len(review.versions)))
        for entry in review.audit:
            self.audit.addItem(audit_line(entry))
        self._update_controls()

    def _update_controls(self) -> None:
        review, identity = self.review, self.identity
        usable = review is not None and identity is not None and self.online
        state = review.record.state.value if review is not None else None
        allowed = allowed_moves(review.record.state) if review is not None else set()
        for target, button in self.move_buttons.items():
            button.setVisible(target in allowed)
            button.setEnabled(usable)
        reviewer = identity is not None and identity.reviewer
        self.sign_off.setVisible(state != SIGNED_OFF)
        self.reopen.setVisible(state == SIGNED_OFF)
        can_sign = usable and reviewer and SIGNED_OFF in allowed
        self.sign_off.setEnabled(can_sign)
        self.reopen.setEnabled(usable and reviewer)
        self.comment.setEnabled(usable and reviewer)
        reason = ""
        if identity is not None and not reviewer:
            reason = (f"{SIGN_OFF_NEEDS_REVIEWER}; {identity.user} is an annotator (a "
                      f"reviewer can grant it: lesionviewer cases grant {identity.user} reviewer).")
        elif not self.online:
            reason = "The case store is not reachable: review moves wait until it is back."
        elif review is not None and state != SIGNED_OFF and not can_sign:
            reason = f"A case cannot be signed off from '{state}'."
        self.permission.setText(reason)
        self.permission.setVisible(bool(reason))
        for button in (self.sign_off, self.reopen):
            button.setToolTip(reason or "Needs the reviewer role; recorded with your name, "
                              "the time and the comment")

    def _request(self, target: str) -> None:
        comment = self.comment.text().strip() if target == SIGNED_OFF else ""
        self.state_requested.emit(target, comment)
        if target == SIGNED_OFF:
            self.comment.clear()


def allowed_moves(state) -> set[str]:
    """The values of the states a case in ``state`` (a ReviewState) may move to."""
    return {s.value for s in ALLOWED[state]}


def agreement_text(agreement, raters: int) -> str:
    if agreement is None:
        return ("One rater so far: nothing to compare." if raters == 1
                else "No saved masks yet." if raters == 0 else "–")
    pairs = "; ".join(f"{a}–{b} {d:.2f}" for (a, b), d in sorted(agreement.pairwise_dice.items()))
    return f"Dice {pairs}. GED among raters {agreement.ged:.3f}."


def audit_line(entry: dict) -> str:
    detail = entry.get("detail") or {}
    extra = ""
    if isinstance(detail, dict):
        keep = {k: v for k, v in detail.items() if v is not None and k in (
            "state", "from", "to", "number", "comment", "conflict_with")}
        extra = " ".join(f"{k}={v}" for k, v in keep.items())
    return f"{when(entry.get('at'))} · {entry.get('user', '?')} · {entry.get('action', '?')}" \
        + (f" ({extra})" if extra else "")
