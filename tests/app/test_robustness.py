"""What must hold when things go wrong or take long: bad files, no model, slow analyses,
cancelling, quitting mid-analysis, and a GUI that never freezes."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

from lesionviewer.app.services.case import Case, CaseStatus
from lesionviewer.app.correction.tools import Tool
from lesionviewer.engine.analysis import AnalysisCancelled, Progress

pytestmark = pytest.mark.gui


def test_a_corrupt_photo_is_reported_and_the_rest_of_the_folder_opens(
        make_window, case_folder, result_of, qtbot):
    (case_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    window = make_window()
    window.open_paths([case_folder])

    qtbot.waitUntil(lambda: "broken.jpg" in window.message_bar.message(), timeout=10_000)
    assert window.message_bar.level == "error"
    broken = window.session.cases.find(case_folder / "broken.jpg")
    assert broken.status == CaseStatus.ERROR and "broken.jpg" in broken.message
    cur = result_of(window)  # the first good photo is on screen and analysed
    assert cur.case.name == "ISIC_0000068.jpg"
    qtbot.waitUntil(lambda: window.session.cases.find(
        case_folder / "ISIC_0024311.jpg").status == CaseStatus.ANALYSED, timeout=30_000)


def test_without_a_model_the_app_opens_says_so_and_still_allows_drawing(
        make_window, case_folder, qtbot, monkeypatch, tmp_path):
    from lesionviewer.engine import checkpoint

    def no_model():
        raise checkpoint.NoModelInstalled("No lesionviewer model is installed.")

    monkeypatch.setattr(checkpoint, "find_default_model", no_model)
    window = make_window(model_dir=None, wait_model=False)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=30_000)
    assert "No lesionviewer model is installed" in window.banner.text()
    assert window.model_label.text() == "No model installed"

    window.open_paths([case_folder / "ISIC_0000068.jpg"])
    qtbot.waitUntil(lambda: window.view.editor is not None, timeout=10_000)
    assert window.session.current.analysis is None  # never random weights, never a guess
    window.actions.analyse.trigger()
    assert "no model is installed" in window.message_bar.message()

    # an annotator can still draw the mask by hand and export it
    window.actions.tools[Tool.POLYGON_ADD].trigger()
    for x, y in [(60, 40), (200, 40), (200, 150), (60, 150)]:
        QTest.mouseClick(window.canvas.viewport(), Qt.LeftButton, Qt.NoModifier,
                         window.canvas.widget_pos(x, y).toPoint())
    QTest.keyClick(window.canvas, Qt.Key_Return)
    assert window.view.editor.mask[50:140, 70:190].all()
    out = tmp_path / "hand"
    with qtbot.waitSignal(window.exporter.finished, timeout=10_000):
        window.start_export(out, all_cases=False, isic_naming=False, coco=False)
    assert (out / "ISIC_0000068_mask.png").is_file()
    assert not (out / "ISIC_0000068_probability.png").exists()  # no analysis, no maps


def test_the_event_loop_is_never_blocked_for_more_than_100_ms_during_an_analysis(
        make_window, case_folder, qtbot):
    window = make_window(background=False, samples=12)
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    session = window.session
    with qtbot.waitSignal(session.service.job_started, timeout=30_000):
        window.open_paths([case_folder / "ISIC_0024311.jpg"])  # 600 x 450
    last[0] = time.perf_counter()
    timer.start()
    started = time.perf_counter()
    with qtbot.waitSignal(session.result_ready, timeout=60_000,
                          check_params_cb=lambda cur: cur.analysis is not None):
        pass
    qtbot.wait(200)  # the result being drawn counts too
    timer.stop()
    assert time.perf_counter() - started > 0.2, "the analysis was too quick to measure anything"
    assert len(gaps) > 10
    print(f"analysis {time.perf_counter() - started:.2f} s, longest gap {max(gaps) * 1000:.0f} ms")
    assert max(gaps) < 0.100, f"event loop blocked for {max(gaps) * 1000:.0f} ms"


@pytest.fixture
def slow_analysis(monkeypatch):
    """Make every analysis take ~10 s in 0.05 s steps, checking the cancel flag at each."""
    from lesionviewer.engine.pipeline import Analyzer

    def analyze(self, image, settings=None, *, seed=0, region=None, progress=None,
                cancelled=None):
        t0 = time.perf_counter()
        for step in range(200):
            if cancelled is not None and cancelled():
                raise AnalysisCancelled("test")
            if progress is not None:
                progress(Progress(step, 200, "slow test step", time.perf_counter() - t0))
            time.sleep(0.05)
        raise AssertionError("the slow analysis was not cancelled")

    monkeypatch.setattr(Analyzer, "analyze", analyze)


def test_cancel_stops_the_analysis_and_leaves_the_case_as_it_was(
        make_window, case_folder, qtbot, slow_analysis):
    window = make_window(background=False)
    session = window.session
    with qtbot.waitSignal(session.service.progress, timeout=30_000):
        window.open_paths([case_folder / "ISIC_0000068.jpg"])
    case = session.current.case
    assert case.status == CaseStatus.ANALYSING
    assert window.progress.isVisible() and "slow test step" in window.progress.label.text()

    with qtbot.waitSignal(session.service.cancelled, timeout=5_000):
        window.progress.cancel.click()
    assert case.status == CaseStatus.NEW
    assert not window.message_bar.isVisible() or window.message_bar.level != "error"
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=2_000)


def test_closing_the_window_mid_analysis_returns_promptly(
        make_window, case_folder, qtbot, slow_analysis):
    window = make_window(background=False)
    with qtbot.waitSignal(window.session.service.progress, timeout=30_000):
        window.open_paths([case_folder / "ISIC_0000068.jpg"])
    t0 = time.perf_counter()
    window.close()
    assert time.perf_counter() - t0 < 3.0
    assert not window.threads_left_running


def test_the_case_on_screen_goes_before_a_running_background_analysis(
        make_window, case_folder, qtbot, slow_analysis):
    window = make_window(background=False)
    session, service = window.session, window.session.service
    first, second = session.cases.add_cases([Case(case_folder / "ISIC_0000068.jpg"),
                                             Case(case_folder / "ISIC_0024311.jpg")])
    with qtbot.waitSignal(service.job_started, timeout=10_000):
        session._analyse(second, foreground=False)
    assert second.status == CaseStatus.ANALYSING

    with qtbot.waitSignal(service.requeued, timeout=5_000) as requeued:
        session._analyse(first, foreground=True)
    assert requeued.args[0].path == second.path
    assert second.status == CaseStatus.QUEUED  # not left showing "analysing"
    qtbot.waitUntil(lambda: first.status == CaseStatus.ANALYSING, timeout=5_000)
    service.cancel()
    qtbot.waitUntil(lambda: not service.busy, timeout=5_000)
    assert {first.status, second.status} == {CaseStatus.NEW}


def test_paging_through_cases_analyses_the_one_on_screen_next(
        make_window, case_folder, qtbot, slow_analysis):
    import shutil

    shutil.copy(case_folder / "ISIC_0000068.jpg", case_folder / "copy.jpg")
    window = make_window(background=False)
    session, service = window.session, window.session.service
    a, b, c = session.cases.add_cases([Case(case_folder / n) for n in
                                       ("ISIC_0000068.jpg", "ISIC_0024311.jpg", "copy.jpg")])
    with qtbot.waitSignal(service.job_started, timeout=10_000):
        session._analyse(a, foreground=True)
    session._analyse(b, foreground=True)  # the user pages on ...
    with qtbot.waitSignal(service.job_started, timeout=5_000) as started:
        session._analyse(c, foreground=True)  # ... and stops here
    assert started.args[0].path == c.path
    assert [j.path for j in service._pending] == [a.path, b.path]  # the others wait behind
    assert not any(j.foreground or j.rgb is not None for j in service._pending)
    service.cancel()
    qtbot.waitUntil(lambda: not service.busy, timeout=5_000)
