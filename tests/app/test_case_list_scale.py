"""The case list stays O(changed rows) at thousands of cases: a status change re-reads only
its own row, never every row (columns sized to contents did, ~1 s per change at 1,000)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication

from lesionviewer.app.services.case import Case, CaseStatus
from lesionviewer.app.views.case_list import CaseListModel, CaseListPanel

pytestmark = pytest.mark.gui
N_CASES = 5_000


class CountingModel(CaseListModel):
    """Counts every data() call the views and the proxy make."""

    calls = 0

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        CountingModel.calls += 1
        return super().data(index, role)


def _settle(qtbot) -> None:
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(20)


@pytest.mark.parametrize("order", ["Folder order", "Review queue: most uncertain first"])
def test_a_status_change_at_5000_cases_reads_only_its_own_row(qtbot, order):
    model = CountingModel()
    panel = CaseListPanel(model)
    qtbot.addWidget(panel)
    panel.resize(420, 700)
    panel.show()
    qtbot.waitExposed(panel)
    cases = [Case(Path(f"/photos/case_{i:05d}.jpg"), ged=(i % 97) / 97 if i % 3 else None)
             for i in range(N_CASES)]
    model.add_cases(cases)
    panel.set_sort(order)
    panel.select_case(cases[0])
    _settle(qtbot)

    per_change = []
    for step, case in enumerate(cases[3:8] + cases[2000:2005]):  # on screen and off
        CountingModel.calls = 0
        case.status, case.progress = CaseStatus.ANALYSING, step / 10
        model.case_changed(case)
        case.status, case.ged = CaseStatus.ANALYSED, 0.5
        model.case_changed(case)
        _settle(qtbot)
        per_change.append(CountingModel.calls / 2)
    # the changed cells, a binary search to re-place the row in a sorted order, and a repaint
    # of the rows on screen when one moves (~200): nothing grows with N (fitting the columns
    # to their contents made it ~24,000 here)
    print("data() calls per status change:", per_change)
    assert max(per_change) < 500, per_change
    qtbot.waitUntil(lambda: panel.summary.text() == "5000 cases · 10 analysed", timeout=2_000)


def test_adding_5000_cases_does_not_read_every_row(qtbot):
    model = CountingModel()
    panel = CaseListPanel(model)
    qtbot.addWidget(panel)
    panel.resize(420, 700)
    panel.show()
    qtbot.waitExposed(panel)
    CountingModel.calls = 0
    model.add_cases([Case(Path(f"/photos/case_{i:05d}.jpg")) for i in range(N_CASES)])
    _settle(qtbot)
    assert CountingModel.calls < 5 * N_CASES // 10, CountingModel.calls  # the visible rows only
