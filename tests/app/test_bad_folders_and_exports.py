"""Folders a real disk holds (link loops, FIFOs) and exports whose names collide or whose disk
fills up: the good photos still open and export, nothing blocks, nothing is overwritten
(issue 12, items 6 and 8)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from lesionviewer.app.services.case import CaseStatus

pytestmark = pytest.mark.gui


def test_a_folder_with_a_link_loop_and_a_fifo_opens_its_good_photos_and_quits(
        make_window, case_folder, result_of, qtbot):
    os.symlink(case_folder / "loop_b.jpg", case_folder / "loop_a.jpg")
    os.symlink(case_folder / "loop_a.jpg", case_folder / "loop_b.jpg")
    if hasattr(os, "mkfifo"):
        os.mkfifo(case_folder / "pipe.jpg")
    window = make_window(background=False)
    window.open_paths([case_folder])
    cases = window.session.cases
    bad = ["loop_a.jpg", "loop_b.jpg"] + (["pipe.jpg"] if hasattr(os, "mkfifo") else [])
    qtbot.waitUntil(lambda: all(cases.find(case_folder / n) is not None
                                and cases.find(case_folder / n).status == CaseStatus.ERROR
                                for n in bad), timeout=10_000)
    assert "link loop" in cases.find(case_folder / "loop_a.jpg").message
    if "pipe.jpg" in bad:
        assert "named pipe" in cases.find(case_folder / "pipe.jpg").message
    assert result_of(window).case.name == "ISIC_0000068.jpg"  # the first good photo
    qtbot.waitUntil(lambda: cases.find(case_folder / "ISIC_0024311.jpg").thumbnail is not None,
                    timeout=10_000)
    assert "Unexpected error" not in window.message_bar.message()
    window.close()
    assert window.session.loader.pool.waitForDone(5_000)  # no thread stuck on the FIFO


def _export(qtbot, items, out, coco=True):
    from lesionviewer.app.services.exporter import Exporter, ExportRequest

    exporter = Exporter()
    with qtbot.waitSignal(exporter.finished, timeout=30_000) as done:
        exporter.start(ExportRequest(out, items, isic_naming=False, coco=coco, threshold=0.5))
    return done.args[0]


def _items(tmp_path, test_data, layout):
    from lesionviewer.app.services.exporter import ExportItem

    items = []
    for n, relative in enumerate(layout):
        path = tmp_path / "photos" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(test_data / "ISIC_0000068.jpg", path)
        mask = np.zeros((192, 256), bool)
        mask[20 + 10 * n:80, 30:120] = True  # a different mask per photo
        items.append(ExportItem(path, np.zeros((192, 256, 3), np.uint8), mask, update_sidecar=False))
    return items


def test_the_app_exports_same_named_photos_into_their_own_folders(qtbot, tmp_path, test_data):
    from lesionviewer.io.images import load_mask

    items = _items(tmp_path, test_data, ["day1/case.jpg", "day2/case.jpg", "day2/case.png"])
    out = tmp_path / "out"
    report = _export(qtbot, items, out)
    assert len(report.exported) == 3 and not report.failed
    for item, case_id in zip(items, ["day1/case", "day2/case_jpg", "day2/case_png"]):
        np.testing.assert_array_equal(load_mask(out / f"{case_id}_mask.png"), item.mask)
        assert (out / f"{case_id}.json").is_file()
    coco = json.loads((out / "lesionviewer_coco.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["day1/case.jpg", "day2/case.jpg", "day2/case.png"]


def test_a_full_disk_during_an_app_export_leaves_no_partial_sets(qtbot, tmp_path, test_data,
                                                                 monkeypatch):
    import lesionviewer.io.fileset as fileset

    items = _items(tmp_path, test_data, ["a.jpg", "b.jpg", "c.jpg"])
    out = tmp_path / "out"
    real_write, calls = fileset._write_all, []

    def full_from_the_second_file(fd, data):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(fileset, "_write_all", full_from_the_second_file)
    report = _export(qtbot, items, out, coco=False)
    assert not report.exported and len(report.failed) == 3
    assert all("No space left on device" in line and "\n" not in line for line in report.failed)
    assert not out.exists() or list(out.iterdir()) == []


def test_a_long_name_exports_under_a_shortened_one(qtbot, tmp_path, test_data):
    long_name = "y" * 240 + ".jpg"  # 244 characters
    items = _items(tmp_path, test_data, [long_name])
    report = _export(qtbot, items, tmp_path / "out")
    assert len(report.exported) == 1 and not report.failed
    names = [p.name for p in (tmp_path / "out").iterdir()]
    assert len(names) == 4 and all(len(n.encode()) <= 255 for n in names)
