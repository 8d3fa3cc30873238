"""Case list order and navigation, polygon editing, undo memory cap, settings, opening."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from lesionviewer.app.services.case import Case, CaseStatus
from lesionviewer.app.views.case_list import CASE_ROLE, REVIEW_QUEUE, CaseListModel, CaseListPanel
from lesionviewer.app.correction.tools import Tool
from lesionviewer.app.correction.undo import MaskUndoStack
from lesionviewer.edit.mask_document import MaskDocument

pytestmark = pytest.mark.gui


def _order(panel: CaseListPanel) -> list[str]:
    proxy = panel.proxy
    return [proxy.index(r, 0).data(CASE_ROLE).name for r in range(proxy.rowCount())]


def test_review_queue_puts_the_most_uncertain_first_and_unanalysed_last(qtbot):
    model = CaseListModel()
    panel = CaseListPanel(model)
    qtbot.addWidget(panel)
    geds = {"a.jpg": 0.05, "b.jpg": None, "c.jpg": 0.40, "d.jpg": 0.20}
    model.set_cases([Case(Path(n), ged=g, malignancy_probability=None if g is None else 1 - g)
                     for n, g in geds.items()])

    panel.set_sort(REVIEW_QUEUE)
    assert _order(panel) == ["c.jpg", "d.jpg", "a.jpg", "b.jpg"]
    panel.set_sort("Malignancy: highest first")
    assert _order(panel) == ["a.jpg", "d.jpg", "c.jpg", "b.jpg"]
    panel.set_sort("Folder order")
    assert _order(panel) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]

    model.cases[1].ged = 0.9  # b finishes its analysis: the queue re-sorts itself
    model.case_changed(model.cases[1])
    panel.set_sort(REVIEW_QUEUE)
    assert _order(panel)[0] == "b.jpg"


def test_page_down_and_ctrl_arrows_move_through_the_cases(make_window, case_folder, qtbot):
    window = make_window(background=False)
    window.open_paths([case_folder])
    qtbot.waitUntil(lambda: window.session.current is not None, timeout=10_000)
    assert window.session.current.case.name == "ISIC_0000068.jpg"

    QTest.keyClick(window.canvas, Qt.Key_PageDown)
    assert window.session.current.case.name == "ISIC_0024311.jpg"
    QTest.keyClick(window.canvas, Qt.Key_Left, Qt.ControlModifier)
    assert window.session.current.case.name == "ISIC_0000068.jpg"
    QTest.keyClick(window.case_list.table, Qt.Key_Down)  # the list's own keys work too
    assert window.session.current.case.name == "ISIC_0024311.jpg"


def test_a_polygon_drawn_by_clicks_is_added_to_the_mask(make_window, case_folder, result_of,
                                                        qtbot):
    window = make_window(background=False)
    window.open_paths([case_folder / "ISIC_0000068.jpg"])
    cur = result_of(window)
    window.actions.tools[Tool.POLYGON_SUBTRACT].trigger()
    corners = [(20, 20), (100, 20), (100, 80), (20, 80)]
    viewport = window.canvas.viewport()
    for x, y in corners:
        QTest.mouseClick(viewport, Qt.LeftButton, Qt.NoModifier,
                         window.canvas.widget_pos(x, y).toPoint())
    QTest.keyClick(window.canvas, Qt.Key_Return)
    assert not cur.editor.mask[25:75, 25:95].any()

    window.actions.tools[Tool.POLYGON_ADD].trigger()
    for x, y in corners[:3]:
        QTest.mouseClick(viewport, Qt.LeftButton, Qt.NoModifier,
                         window.canvas.widget_pos(x, y).toPoint())
    QTest.mouseDClick(viewport, Qt.LeftButton, Qt.NoModifier,
                      window.canvas.widget_pos(*corners[3]).toPoint())
    assert cur.editor.mask[25:75, 25:95].all()
    assert window.actions.undo.text().replace("&", "").startswith("Undo Polygon add")


def test_undo_keeps_at_least_100_steps_and_stays_within_its_memory_budget(qtbot):
    doc = MaskDocument(np.zeros((200, 200), bool))
    stack = MaskUndoStack(doc)
    for i in range(150):
        stack.push_delta(doc.paint_stroke([(i % 190 + 5, (i * 7) % 190 + 5)], 3, True))
    assert stack.count() >= 100

    doc = MaskDocument(np.zeros((200, 200), bool))
    small = MaskUndoStack(doc, max_bytes=2_000)
    snapshots = [doc.mask.copy()]
    for i in range(40):
        small.push_delta(doc.paint_stroke([(5 * i + 2, 100)], 4, True))
        snapshots.append(doc.mask.copy())
    assert 0 < small.count() < 40 and small.nbytes() <= 2_000
    for expected in reversed(snapshots[-small.count() - 1:-1]):  # what is kept undoes exactly
        small.undo()
        np.testing.assert_array_equal(doc.mask, expected)


def test_settings_are_saved_as_json_and_used_for_the_next_analysis(
        make_window, case_folder, result_of, app_home, qtbot):
    window = make_window(background=False)
    window.open_paths([case_folder / "ISIC_0000068.jpg"])
    result_of(window)
    new = type(window.settings)(**{**window.settings.__dict__})
    new.samples, new.crf, new.mask_colour = 3, False, "#ff0000"
    with qtbot.waitSignal(window.session.result_ready, timeout=30_000,
                          check_params_cb=lambda cur: cur.analysis is not None
                          and len(cur.analysis.timesteps) == 3):
        window.apply_settings(new)
    saved = json.loads((app_home / "config" / "settings.json").read_text())
    assert saved["samples"] == 3 and saved["crf"] is False and saved["mask_colour"] == "#ff0000"
    assert window.session.current.analysis.settings["crf"] is False


def test_dropped_files_open_and_are_remembered_as_recent(make_window, case_folder, app_home,
                                                         qtbot):
    window = make_window(background=False)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(case_folder / "ISIC_0024311.jpg"))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.session.current is not None, timeout=10_000)
    assert window.session.current.case.name == "ISIC_0024311.jpg"
    recent = json.loads((app_home / "config" / "recent.json").read_text())
    assert recent == [str((case_folder / "ISIC_0024311.jpg").resolve())]


def test_opening_a_folder_twice_does_not_duplicate_cases(make_window, case_folder, qtbot):
    window = make_window(background=False)
    window.open_paths([case_folder])
    window.open_paths([case_folder, case_folder / "ISIC_0000068.jpg"])
    assert len(window.session.cases.cases) == 2
    qtbot.waitUntil(lambda: all(c.thumbnail is not None for c in window.session.cases.cases),
                    timeout=10_000)
    assert {c.status for c in window.session.cases.cases} <= {CaseStatus.NEW, CaseStatus.QUEUED,
                                                               CaseStatus.ANALYSING,
                                                               CaseStatus.ANALYSED}


def test_fit_and_one_to_one(make_window, case_folder, qtbot):
    window = make_window(background=False)
    window.open_paths([case_folder / "ISIC_0024311.jpg"])
    qtbot.waitUntil(lambda: window.canvas.image_size == (450, 600), timeout=10_000)
    canvas = window.canvas
    window.actions.one_to_one.trigger()
    assert canvas.pixels_per_image_pixel() == pytest.approx(1.0, rel=0.02)
    window.actions.fit.trigger()
    rect = canvas.view.viewRect()
    assert rect.width() >= 600 * 0.99 and rect.height() >= 450 * 0.99  # the whole photo shows
    assert min(rect.width() / 600, rect.height() / 450) < 1.1  # and fills the view


def test_the_settings_dialog_reads_back_what_the_user_chose(qtbot):
    from lesionviewer.app.preferences import AppSettings
    from lesionviewer.app.dialogs.settings_dialog import SettingsDialog
    from lesionviewer.engine.analysis import AnalysisSettings, Method

    defaults = AnalysisSettings(samples=4, timestep_range=(60, 150), crf=True,
                                method=Method.DIFFSEG)
    dialog = SettingsDialog(AppSettings(), defaults)
    qtbot.addWidget(dialog)
    assert dialog.samples.text() == "model default (4)"
    dialog.samples.setValue(8)
    dialog.t_first.setValue(200)
    dialog.t_last.setValue(100)  # given the wrong way round
    dialog.crf.setCurrentText("off")
    dialog.method.setCurrentText("probe")
    dialog.device.setCurrentText("cpu")
    chosen = dialog.result_settings()
    assert (chosen.samples, chosen.timestep_first, chosen.timestep_last) == (8, 100, 200)
    assert chosen.crf is False and chosen.method == "probe" and chosen.device == "cpu"
    engine = chosen.analysis_settings()
    assert engine.timestep_range == (100, 200) and engine.method is Method.PROBE


def test_the_mouse_wheel_zooms_around_the_cursor(make_window, case_folder, qtbot):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    window = make_window(background=False)
    window.open_paths([case_folder / "ISIC_0024311.jpg"])
    qtbot.waitUntil(lambda: window.canvas.image_size == (450, 600), timeout=10_000)
    canvas = window.canvas
    before = canvas.view.viewRect()
    spot = canvas.widget_pos(150, 100)
    wheel = QWheelEvent(spot, canvas.viewport().mapToGlobal(spot), QPoint(0, 0), QPoint(0, 240),
                        Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), wheel)
    after = canvas.view.viewRect()
    assert after.width() < before.width() * 0.9  # zoomed in
    still = canvas.image_pos(spot)
    assert abs(still.x() - 150) < 3 and abs(still.y() - 100) < 3  # the point under the cursor stays
