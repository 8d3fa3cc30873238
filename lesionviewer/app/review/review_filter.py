"""The case list's review filters: by review state and by rater.

The state filter reads each case's review state (known once the case is in the store). The
rater filter asks the store which of the listed cases the rater drew a mask for (one query on
the store thread), so it covers cases not opened yet in this session too; cases the store
gets to know later (a big folder is added in the background) are asked about as they come.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel

from lesionviewer.app.views.case_list import REVIEW_ORDER

ANY = "any"


class ReviewFilter(QObject):
    """Two combo boxes under the case list's order box; filters the list's proxy."""

    def __init__(self, list_panel, sync, parent=None):
        super().__init__(parent)
        self.list_panel, self.sync = list_panel, sync
        self.state = QComboBox()
        self.state.addItems([ANY, *REVIEW_ORDER])
        self.state.setToolTip("Show only cases in this review state")
        self.rater = QComboBox()
        self.rater.addItem(ANY)
        self.rater.setToolTip("Show only cases this rater drew a mask for")
        self._rater_cases: set[int] | None = None  # store case ids of the chosen rater
        self._asked: set[int] = set()  # store case ids asked about for the chosen rater
        self._ask_timer = QTimer(self, singleShot=True, interval=200)  # cases added meanwhile
        self._ask_timer.timeout.connect(self._ask)
        row = QHBoxLayout()
        row.addWidget(QLabel("Review"))
        row.addWidget(self.state, 1)
        row.addWidget(QLabel("Rater"))
        row.addWidget(self.rater, 1)
        list_panel.layout().insertLayout(2, row)
        self.state.currentTextChanged.connect(lambda _t: self._apply())
        self.rater.currentTextChanged.connect(self._on_rater)
        sync.case_updated.connect(self._on_case_updated)

    def add_raters(self, names) -> None:
        """Offer these rater names (kept sorted, each once)."""
        known = {self.rater.itemText(i) for i in range(1, self.rater.count())}
        new = sorted(set(names) - known - {""}, key=str.casefold)
        if not new:
            return
        current = self.rater.currentText()
        self.rater.blockSignals(True)
        self.rater.clear()
        self.rater.addItems([ANY, *sorted(known | set(new), key=str.casefold)])
        self.rater.setCurrentText(current)
        self.rater.blockSignals(False)

    def set_filter(self, state: str = ANY, rater: str = ANY) -> None:
        self.add_raters([rater] if rater != ANY else [])
        self.state.setCurrentText(state)
        self.rater.setCurrentText(rater)

    def _on_case_updated(self, case) -> None:
        self.add_raters(case.raters)
        if self._rater_cases is not None and \
                self.sync.case_ids.get(case.path) not in self._asked:
            self._ask_timer.start()  # in the store since the rater was chosen
        if self.state.currentText() != ANY or self._rater_cases is not None:
            self._apply()

    def _on_rater(self, rater: str) -> None:
        self._asked = set()
        if rater == ANY:
            self._rater_cases = None
            self._apply()
            return
        self._rater_cases = set()  # nothing shown until the store answers
        self._apply()
        self._ask()

    def _ask(self) -> None:
        """Ask the store which of the listed cases not asked about yet the rater drew."""
        rater, ids = self.rater.currentText(), set(self.sync.case_ids.values()) - self._asked
        if rater == ANY or not ids:
            return
        self._asked |= ids
        self.sync.service.call(
            lambda store: [row.case_id for row in store.queue_rows(ids, rater=rater)],
            lambda found, r=rater: self._on_rater_cases(r, found),
            lambda exc, r=rater: self._asked.difference_update(ids))

    def _on_rater_cases(self, rater: str, ids) -> None:
        if self.rater.currentText() == rater and self._rater_cases is not None:
            self._rater_cases |= set(ids)
            self._apply()

    def _apply(self) -> None:
        state, raters = self.state.currentText(), self._rater_cases
        rater = self.rater.currentText()
        ids = self.sync.case_ids
        if state == ANY and raters is None:
            self.list_panel.proxy.set_row_filter(None)
            return

        def accepts(case) -> bool:
            if state != ANY and case.review_state != state:
                return False
            if raters is None:
                return True
            return ids.get(case.path) in raters or rater in case.raters

        self.list_panel.proxy.set_row_filter(accepts)
