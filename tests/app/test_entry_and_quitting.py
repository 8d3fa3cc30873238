"""The entry point, logging, export of a whole folder, and quitting with edits that cannot be
saved."""

from __future__ import annotations

import json
import sys

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from lesionviewer.app.correction.tools import Tool

pytestmark = pytest.mark.gui


def _paint(window, mouse_drag):
    cur = window.session.current
    h, w = cur.editor.mask.shape
    window.actions.tools[Tool.ERASER].trigger()
    mouse_drag(window, [(w * 0.3, h / 2), (w * 0.5, h / 2), (w * 0.7, h / 2)])
    window.actions.tools[Tool.BRUSH].trigger()
    mouse_drag(window, [(w * 0.3, h / 2), (w * 0.4, h / 2)])
    assert cur.editor.edited


def test_main_opens_the_window_logs_and_returns_when_it_is_closed(
        qtbot, app_home, case_folder, tiny_model_dir, monkeypatch):
    from lesionviewer.app import main
    from lesionviewer.app.main_window import MainWindow

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # main() installs its own
    seen = {}

    def close_when_analysed():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        window = windows[-1] if windows else None
        if window is None or window.session.current is None or \
                window.session.current.analysis is None:
            QTimer.singleShot(100, close_when_analysed)
            return
        seen["title"] = window.windowTitle()
        seen["model"] = window.model_label.text()
        window.close()

    QTimer.singleShot(100, close_when_analysed)
    assert main([str(case_folder)], model_dir=str(tiny_model_dir), device="cpu") == 0
    assert seen["title"].startswith("ISIC_0000068.jpg")
    assert "tiny-random-test" in seen["model"]
    log_text = (app_home / "log" / "lesionviewer.log").read_text()
    assert "starting" in log_text and "model tiny-random-test" in log_text


def test_export_all_writes_every_case_and_one_coco_file(
        make_window, case_folder, result_of, tmp_path, qtbot, mouse_drag):
    window = make_window(background=True)
    window.open_paths([case_folder])
    result_of(window)
    qtbot.waitUntil(lambda: all(c.ged is not None for c in window.session.cases.cases),
                    timeout=30_000)
    _paint(window, mouse_drag)
    out = tmp_path / "all"
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as blocker:
        window.start_export(out, all_cases=True, isic_naming=False, coco=True)
    report = blocker.args[0]
    assert report.failed == [] and report.skipped == []
    assert {p.name for p in report.exported} == {"ISIC_0000068.jpg", "ISIC_0024311.jpg"}
    for case in ("ISIC_0000068", "ISIC_0024311"):
        assert (out / f"{case}_mask.png").is_file() and (out / f"{case}_overlay.png").is_file()
        assert (out / f"{case}_variance.png").is_file()  # its analysis came from the cache
    coco = json.loads((out / "lesionviewer_coco.json").read_text())
    assert sorted(i["file_name"] for i in coco["images"]) == ["ISIC_0000068.jpg",
                                                              "ISIC_0024311.jpg"]
    statuses = {c.name: c.status.value for c in window.session.cases.cases}
    assert statuses == {"ISIC_0000068.jpg": "exported", "ISIC_0024311.jpg": "exported"}


def test_quitting_with_edits_that_cannot_be_saved_asks_first(
        make_window, case_folder, result_of, mouse_drag, monkeypatch, qtbot):
    import lesionviewer.app.services.autosave as autosave

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(autosave, "save_sidecar", disk_full)
    window = make_window(background=False)
    window.open_paths([case_folder / "ISIC_0000068.jpg"])
    result_of(window)
    _paint(window, mouse_drag)
    qtbot.waitUntil(lambda: "could not be saved" in window.message_bar.message(), timeout=5_000)

    asked = []
    window.ask_quit_anyway = lambda errors: asked.append(errors) or False
    window.close()
    assert window.isVisible()  # the user said no: nothing is lost
    assert "No space left on device" in asked[0][0]

    window.ask_quit_anyway = lambda errors: True
    window.close()
    assert not window.isVisible()


def test_edits_to_photos_in_a_read_only_folder_are_kept_in_the_app_data_folder(
        make_window, case_folder, result_of, mouse_drag, monkeypatch, app_home, qtbot):
    import lesionviewer.io.sidecar as sidecar_module

    real_write = sidecar_module._save_at

    def refuse_photo_folder(sidecar, json_path):
        if json_path.parent == case_folder:  # what a read-only share does (root ignores chmod)
            raise PermissionError(13, "Permission denied", str(json_path))
        return real_write(sidecar, json_path)

    monkeypatch.setattr(sidecar_module, "_save_at", refuse_photo_folder)
    window = make_window(background=False)
    window.open_paths([case_folder / "ISIC_0000068.jpg"])
    result_of(window)
    _paint(window, mouse_drag)
    edited = window.session.current.editor.mask.copy()
    with qtbot.waitSignal(window.session.autosaver.saved, timeout=10_000) as saved:
        pass
    assert saved.args[2].parent == app_home / "data" / "sidecars"
    assert not list(case_folder.glob("*.lesionviewer*"))
    window.close()

    again = make_window(background=False)
    again.open_paths([case_folder / "ISIC_0000068.jpg"])
    result_of(again)
    assert (again.session.current.editor.mask == edited).all()


def test_cancel_in_the_status_bar_stops_an_export_it_shows(
        make_window, case_folder, result_of, tmp_path, qtbot, monkeypatch):
    import time as time_module

    import lesionviewer.app.services.exporter as exporter_module

    real_export = exporter_module.export_case

    def slow_export(*args, **kwargs):
        time_module.sleep(0.5)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(exporter_module, "export_case", slow_export)
    for i in range(6):
        (case_folder / f"copy{i}.jpg").write_bytes((case_folder / "ISIC_0000068.jpg").read_bytes())
    window = make_window(background=True)
    window.open_paths([case_folder])
    result_of(window)
    qtbot.waitUntil(lambda: not window.session.service.busy, timeout=60_000)
    with qtbot.waitSignal(window.exporter.progress, timeout=10_000):
        window.start_export(tmp_path / "out", all_cases=True, isic_naming=False, coco=True)
    assert window.progress.isVisible() and "exporting" in window.progress.label.text()
    with qtbot.waitSignal(window.exporter.finished, timeout=10_000) as done:
        window.progress.cancel.click()
    report = done.args[0]
    assert report.cancelled and len(report.exported) < 8
    assert not (tmp_path / "out" / "lesionviewer_coco.json").exists()
