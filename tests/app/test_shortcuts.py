"""Keyboard shortcuts pressed as a user would: on whichever widget has the focus."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit

from lesionviewer.app.services.case import CaseStatus
from lesionviewer.app.views.case_list import REVIEW_QUEUE

pytestmark = pytest.mark.gui


def _focused():
    widget = QApplication.focusWidget()
    assert widget is not None
    return widget


def _open(window, folder, qtbot):
    window.case_list.filter_edit.setFocus()  # where focus lands first, or after a file dialog
    window.open_paths([folder])
    qtbot.waitUntil(lambda: window.session.current is not None, timeout=10_000)


def test_single_letter_shortcuts_act_on_the_photo_after_a_folder_opens(
        make_window, case_folder, qtbot):
    window = make_window(background=False)
    _open(window, case_folder, qtbot)
    assert not isinstance(_focused(), QLineEdit)
    checks = window.side_panel.overlay_checks
    variance, mask = checks["variance"].isChecked(), checks["mask"].isChecked()

    QTest.keyClick(_focused(), Qt.Key_V)
    QTest.keyClick(_focused(), Qt.Key_M)
    assert checks["variance"].isChecked() is not variance
    assert checks["mask"].isChecked() is not mask
    radius = window.tools.brush_radius
    QTest.keyClick(_focused(), Qt.Key_BracketRight)
    assert window.tools.brush_radius > radius
    assert window.case_list.filter_edit.text() == ""  # nothing was typed into the filter
    assert window.case_list.proxy.rowCount() == 2

    window.case_list.table.setFocus()  # the list has the focus: letters still are shortcuts
    QTest.keyClick(_focused(), Qt.Key_V)
    assert checks["variance"].isChecked() is variance


class X11LineEdit(QLineEdit):
    """A QLineEdit with the X11 key bindings Qt uses under xcb (the offscreen platform has
    none): Ctrl+U deletes the whole line, so the line edit claims it from the shortcuts."""

    def event(self, event):
        if event.type() == QEvent.ShortcutOverride and event.key() == Qt.Key_U \
                and event.modifiers() == Qt.ControlModifier:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event):
        if event.key() == Qt.Key_U and event.modifiers() == Qt.ControlModifier:
            self.clear()
            return
        super().keyPressEvent(event)


def test_in_the_filter_box_letters_type_and_ctrl_u_still_opens_the_review_queue(
        make_window, case_folder, qtbot, monkeypatch):
    import lesionviewer.app.views.case_list as case_list

    monkeypatch.setattr(case_list, "QLineEdit", X11LineEdit)
    window = make_window(background=False)
    assert isinstance(window.case_list.filter_edit, X11LineEdit)
    _open(window, case_folder, qtbot)
    panel = window.case_list
    panel.filter_edit.setFocus()
    variance = window.side_panel.overlay_checks["variance"].isChecked()

    QTest.keyClicks(_focused(), "0243")
    assert panel.filter_edit.text() == "0243" and panel.proxy.rowCount() == 1
    QTest.keyClick(_focused(), Qt.Key_V)  # a letter in a text field is text
    assert panel.filter_edit.text() == "0243v"
    assert window.side_panel.overlay_checks["variance"].isChecked() is variance

    QTest.keyClick(_focused(), Qt.Key_U, Qt.ControlModifier)
    assert panel.sort_combo.currentText() == REVIEW_QUEUE
    assert panel.filter_edit.text() == "0243v"  # Ctrl+U did not delete the line either


def test_ctrl_period_stops_the_analyses_and_the_folder_stays_stopped(
        make_window, case_folder, qtbot, monkeypatch):
    for i in range(6):
        shutil.copy(case_folder / "ISIC_0024311.jpg", case_folder / f"copy{i}.jpg")
    window = make_window(background=True)
    session, service = window.session, window.session.service
    loader = session.loader
    held = []
    load = loader.request_thumbnails

    def first_three_now(paths):  # the rest of the thumbnails arrive after the key press
        paths = list(paths)
        held.extend(paths[3:])
        load(paths[:3])

    monkeypatch.setattr(loader, "request_thumbnails", first_three_now)
    _open(window, case_folder, qtbot)
    qtbot.waitUntil(lambda: service.busy and window.actions.cancel.isEnabled(), timeout=10_000)

    QTest.keyClick(_focused(), Qt.Key_Period, Qt.ControlModifier)
    qtbot.waitUntil(lambda: not service.busy, timeout=30_000)
    load(held)  # thumbnails still loading when the user cancelled
    cases = session.cases.cases
    qtbot.waitUntil(lambda: all(c.thumbnail is not None for c in cases), timeout=10_000)
    qtbot.wait(300)
    assert not service.busy and service.running is None and service.queued == 0
    assert not any(c.status in (CaseStatus.QUEUED, CaseStatus.ANALYSING) for c in cases)
    assert "cancelled" in window.statusBar().currentMessage()

    with qtbot.waitSignal(service.busy_changed, timeout=5_000):
        window.actions.analyse_all.trigger()  # Shift+F5 starts them again
    assert service.busy


def test_ctrl_period_while_the_model_still_loads_is_not_undone_by_the_model_arriving(
        make_window, case_folder, qtbot, monkeypatch):
    """Start-up takes seconds before the model is in; a Cancel pressed meanwhile used to be
    undone when the model arrived and queued the whole folder."""
    import threading

    from lesionviewer.engine import Analyzer

    release = threading.Event()
    load = Analyzer.from_dir.__func__

    def held_load(cls, *args, **kwargs):  # runs in the analysis thread
        release.wait(30)
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(Analyzer, "from_dir", classmethod(held_load))
    try:
        window = make_window(background=True, wait_model=False)
        service = window.session.service
        _open(window, case_folder, qtbot)
        qtbot.waitUntil(lambda: service.busy and service.queued >= 2, timeout=10_000)
        QTest.keyClick(_focused(), Qt.Key_Period, Qt.ControlModifier)
        assert not service.busy
    finally:
        release.set()
    qtbot.waitUntil(lambda: service.model is not None, timeout=30_000)
    qtbot.waitUntil(lambda: window.session.current.editor is not None, timeout=10_000)
    qtbot.wait(300)
    assert not service.busy
    assert not any(c.status in (CaseStatus.QUEUED, CaseStatus.ANALYSING)
                   for c in window.session.cases.cases)
    assert window.session.current.analysis is None  # drawn by hand, or F5

    with qtbot.waitSignal(window.session.result_ready, timeout=30_000,
                          check_params_cb=lambda cur: cur.analysis is not None):
        QTest.keyClick(_focused(), Qt.Key_F5)
