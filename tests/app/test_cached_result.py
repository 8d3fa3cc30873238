"""A case analysed before shows its result at once, even while the analysis thread is busy
with another photo (it used to wait behind the queue, showing "queued" for seconds)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from lesionviewer.app.services.case import CaseStatus
from lesionviewer.engine.analysis import AnalysisCancelled

pytestmark = pytest.mark.gui


def test_paging_back_to_an_analysed_case_shows_it_while_another_is_being_analysed(
        make_window, case_folder, result_of, app_home, qtbot, monkeypatch):
    window = make_window(background=False)
    session, service = window.session, window.session.service
    window.open_paths([case_folder])
    first = result_of(window).case
    cache = window.dirs.cache / "analyses"
    qtbot.waitUntil(lambda: any(cache.glob("*.json")), timeout=10_000)  # written after the result

    from lesionviewer.engine.pipeline import Analyzer

    release = threading.Event()

    def stuck(self, image, settings=None, *, seed=0, region=None, progress=None, cancelled=None):
        release.wait(30)  # one long step that cannot be cancelled
        raise AnalysisCancelled("released by the test")

    monkeypatch.setattr(Analyzer, "analyze", stuck)
    try:
        with qtbot.waitSignal(service.job_started, timeout=10_000):
            QTest.keyClick(window.canvas, Qt.Key_PageDown)  # the next case: analysis starts
        second = session.current.case
        assert second is not first and service.running.path == second.path

        statuses = []
        session.cases.dataChanged.connect(lambda *_: statuses.append(first.status))
        with qtbot.waitSignal(session.result_ready, timeout=10_000,
                              check_params_cb=lambda cur: cur.analysis is not None):
            QTest.keyClick(window.canvas, Qt.Key_PageUp)  # back to the analysed case
        cur = session.current
        assert cur.case is first and cur.outcome.from_cache
        assert service.running is not None and service.running.path == second.path  # still busy
        assert CaseStatus.QUEUED not in statuses and first.status == CaseStatus.ANALYSED
        qtbot.waitUntil(lambda: window.view.editor is cur.editor, timeout=5_000)
    finally:
        release.set()
    qtbot.waitUntil(lambda: service.running is None or service.running.path != second.path,
                    timeout=10_000)


def test_a_case_shown_from_the_cache_leaves_the_analysis_queue(
        make_window, case_folder, result_of, qtbot, monkeypatch):
    """Its background job would only redo it (and offer to replace the user's edits)."""
    window = make_window(background=False)
    session, service = window.session, window.session.service
    window.open_paths([case_folder / "ISIC_0000068.jpg"])
    case = result_of(window).case
    cache = window.dirs.cache / "analyses"
    qtbot.waitUntil(lambda: any(cache.glob("*.json")), timeout=10_000)
    session.show_case(None)

    from lesionviewer.engine.pipeline import Analyzer

    release = threading.Event()

    def stuck(self, image, settings=None, *, seed=0, region=None, progress=None, cancelled=None):
        release.wait(30)
        raise AnalysisCancelled("released by the test")

    monkeypatch.setattr(Analyzer, "analyze", stuck)
    try:
        with qtbot.waitSignal(service.job_started, timeout=10_000):  # another photo, stuck
            service.submit(case_folder / "ISIC_0024311.jpg", session.settings.analysis_settings())
        service.submit(case.path, session.settings.analysis_settings())  # queued behind it
        assert [j.path for j in service._pending] == [case.path]
        with qtbot.waitSignal(service.cached, timeout=10_000):
            session.show_case(case)
        assert service._pending == []
    finally:
        release.set()
    qtbot.waitUntil(lambda: not service.busy, timeout=30_000)
