"""A reviewer's path through one case: open, analyse, paint, undo/redo, export, reopen."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from lesionviewer.app.services.case import CaseStatus
from lesionviewer.app.views.side_panel import DISCLAIMER
from lesionviewer.app.correction.tools import Tool

pytestmark = pytest.mark.gui


def _stroke_row(cur):
    """A horizontal stroke across the middle third of the photo: image points and pixels."""
    h, w = cur.editor.mask.shape
    y = h // 2 + 0.5
    x0, x1 = w * 0.3, w * 0.7
    points = [(x0 + (x1 - x0) * t / 10, y) for t in range(11)]
    cols = np.arange(int(x0) + 1, int(x1) - 1)
    return points, (np.full_like(cols, int(y)), cols)


def _edit(window, cur, mouse_drag):
    """Erase a row across the lesion, then paint its left part back: whatever the model's
    mask was, the result differs from it. Returns the row's pixels."""
    points, (rows, cols) = _stroke_row(cur)
    window.actions.tools[Tool.ERASER].trigger()
    mouse_drag(window, points)
    window.actions.tools[Tool.BRUSH].trigger()
    mouse_drag(window, points[:4])
    assert cur.editor.edited
    return rows, cols


def _open_first(window, case_folder, result_of):
    window.open_paths([case_folder])
    cur = result_of(window)
    assert cur.case.name == "ISIC_0000068.jpg"
    return cur


def test_opening_a_folder_shows_the_first_case_analysed(make_window, case_folder, result_of,
                                                        qtbot):
    window = make_window()
    cur = _open_first(window, case_folder, result_of)

    assert [c.name for c in window.session.cases.cases] == ["ISIC_0000068.jpg",
                                                            "ISIC_0024311.jpg"]
    assert cur.case.status == CaseStatus.ANALYSED
    assert cur.editor.mask.shape == (192, 256)  # full resolution, not the model's 32 px
    panel = window.side_panel
    assert "%" in panel.malignancy.text()  # figure and range: tests/app/test_result_trust.py
    assert panel.disclaimer.text() == DISCLAIMER
    float(panel.ged.text().split()[0])  # the GED, then its level when the model has cut-offs
    # the reference mask next to the photo is compared with the current mask
    qtbot.waitUntil(lambda: panel.dice.text().replace(".", "").isdigit(), timeout=5_000)
    assert "tiny-random-test" in window.model_label.text()
    assert window.canvas.image_size == (192, 256)


def test_brush_and_eraser_strokes_change_the_mask_where_painted(
        make_window, case_folder, result_of, mouse_drag):
    window = make_window(background=False)
    cur = _open_first(window, case_folder, result_of)
    points, (rows, cols) = _stroke_row(cur)
    far_away = cur.editor.mask[:10, :10].copy()

    window.actions.tools[Tool.ERASER].trigger()
    mouse_drag(window, points)
    assert not cur.editor.mask[rows, cols].any()

    window.actions.tools[Tool.BRUSH].trigger()
    mouse_drag(window, points)
    assert cur.editor.mask[rows, cols].all()
    np.testing.assert_array_equal(cur.editor.mask[:10, :10], far_away)
    # the overlay shows what the document holds
    assert window.view.items["mask"]._buffer[rows, cols].all()


def test_undo_and_redo_walk_back_and_forth_one_stroke_at_a_time(
        make_window, case_folder, result_of, mouse_drag, qtbot):
    window = make_window(background=False)
    cur = _open_first(window, case_folder, result_of)
    points, (rows, cols) = _stroke_row(cur)
    half = len(cols) // 2
    model_mask = cur.editor.mask.copy()

    window.actions.tools[Tool.ERASER].trigger()
    mouse_drag(window, points)  # erase the whole row ...
    after_erase = cur.editor.mask.copy()
    window.actions.tools[Tool.BRUSH].trigger()
    mouse_drag(window, points[:4])  # ... and paint its left part back
    assert cur.case.status == CaseStatus.EDITED

    window.actions.undo.trigger()
    np.testing.assert_array_equal(cur.editor.mask, after_erase)
    window.actions.undo.trigger()
    np.testing.assert_array_equal(cur.editor.mask, model_mask)
    assert cur.case.status == CaseStatus.ANALYSED  # nothing of the user's is left
    window.actions.redo.trigger()
    window.actions.redo.trigger()
    assert cur.editor.mask[rows[:5], cols[:5]].all()
    assert not cur.editor.mask[rows[-half:], cols[-half:]].any()
    assert cur.case.status == CaseStatus.EDITED
    assert window.actions.undo.text().replace("&", "").startswith("Undo Brush")
    qtbot.keyClick(window.canvas, Qt.Key_Z, Qt.ControlModifier)  # the keyboard works too
    np.testing.assert_array_equal(cur.editor.mask, after_erase)


def test_export_writes_the_edited_mask_and_a_json_record(
        make_window, case_folder, result_of, mouse_drag, tmp_path, qtbot):
    window = make_window(background=False)
    cur = _open_first(window, case_folder, result_of)
    rows, cols = _edit(window, cur, mouse_drag)
    out = tmp_path / "export"

    with qtbot.waitSignal(window.exporter.finished, timeout=30_000) as blocker:
        assert window.start_export(out, all_cases=False, isic_naming=True, coco=True)
    report = blocker.args[0]
    assert report.failed == [] and len(report.exported) == 1

    png = Image.open(out / "ISIC_0000068_segmentation.png")
    mask = np.asarray(png)
    assert mask.shape == (192, 256) and set(np.unique(mask)) <= {0, 255}
    assert (mask[rows[:5], cols[:5]] == 255).all() and (mask[rows[-5:], cols[-5:]] == 0).all()
    np.testing.assert_array_equal(mask > 0, cur.editor.mask)
    assert not png.getexif()  # nothing from the camera leaks into exports
    record = json.loads((out / "ISIC_0000068.json").read_text())
    assert record["case_id"] == "ISIC_0000068"
    assert record["model_id"] == cur.analysis.model_id
    assert record["edit_summary"] == cur.editor.undo_stack.summary.to_dict()
    assert record["edit_summary"]["total_strokes"] >= 1
    prob = np.asarray(Image.open(out / "ISIC_0000068_probability.png"))
    assert prob.dtype == np.uint16 and prob.shape == (192, 256)
    coco = json.loads((out / "lesionviewer_coco.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == ["ISIC_0000068.jpg"]
    assert cur.case.status == CaseStatus.EXPORTED


def test_edits_are_autosaved_and_come_back_when_the_folder_is_reopened(
        make_window, case_folder, result_of, mouse_drag, qtbot):
    window = make_window(background=False)
    cur = _open_first(window, case_folder, result_of)
    _edit(window, cur, mouse_drag)
    edited = cur.editor.mask.copy()
    with qtbot.waitSignal(window.session.autosaver.saved, timeout=10_000):
        pass  # the autosave timer fires shortly after the stroke
    assert (case_folder / "ISIC_0000068.jpg.lesionviewer.json").is_file()
    window.close()

    again = make_window(background=False)
    again.open_paths([case_folder])
    reopened = result_of(again)
    np.testing.assert_array_equal(reopened.editor.mask, edited)
    assert reopened.case.status == CaseStatus.EDITED
    assert reopened.outcome.from_cache  # the analysis itself came back from the cache
    assert "cache" in again.side_panel.timings.text()


def test_threshold_follows_live_but_never_drops_edits(
        make_window, case_folder, result_of, mouse_drag, qtbot):
    window = make_window(background=False)
    cur = _open_first(window, case_folder, result_of)
    probability = cur.analysis.consensus_probability
    slider = window.side_panel.threshold_slider

    slider.setValue(90)
    qtbot.waitUntil(lambda: np.array_equal(cur.editor.mask, probability >= 0.9), timeout=2_000)
    assert cur.case.status == CaseStatus.ANALYSED

    _edit(window, cur, mouse_drag)
    edited = cur.editor.mask.copy()
    slider.setValue(30)
    qtbot.waitUntil(lambda: "edits are kept" in window.message_bar.message(), timeout=2_000)
    np.testing.assert_array_equal(cur.editor.mask, edited)
    window.message_bar._buttons[0].click()  # "Replace my edits with the threshold mask"
    np.testing.assert_array_equal(cur.editor.mask, probability >= 0.3)
    window.actions.undo.trigger()  # ... and that, too, can be undone
    np.testing.assert_array_equal(cur.editor.mask, edited)


def test_a_region_box_is_analysed_and_saved_with_the_case(
        make_window, case_folder, result_of, mouse_drag, qtbot):
    window = make_window(background=False)
    _open_first(window, case_folder, result_of)
    window.actions.tools[Tool.REGION].trigger()
    with qtbot.waitSignal(window.session.result_ready, timeout=30_000,
                          check_params_cb=lambda cur: cur.analysis is not None
                          and cur.analysis.region is not None):
        mouse_drag(window, [(40, 30), (120, 90), (200, 150)])
    cur = window.session.current
    x, y, w, h = cur.analysis.region
    assert abs(x - 40) <= 1 and abs(y - 30) <= 1 and abs(w - 160) <= 2 and abs(h - 120) <= 2
    assert not cur.editor.mask[:, :30].any()  # outside the box is background
    # saved within a second of the change (which may come before the result, so no signal wait)
    qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=10_000)
    sidecar = json.loads((case_folder / "ISIC_0000068.jpg.lesionviewer.json").read_text())
    assert sidecar["roi"] == list(cur.case.region)


def test_brush_size_keys_change_the_circle(make_window, case_folder, result_of, qtbot):
    window = make_window(background=False)
    _open_first(window, case_folder, result_of)
    window.actions.tools[Tool.BRUSH].trigger()
    before = window.tools.brush_radius
    qtbot.keyClick(window.canvas, "]")
    assert window.tools.brush_radius > before
    qtbot.keyClick(window.canvas, "[")
    qtbot.keyClick(window.canvas, "[")
    assert window.tools.brush_radius < before


def test_coming_back_to_a_case_brings_its_undo_history_back(
        make_window, case_folder, result_of, mouse_drag, qtbot):
    window = make_window(background=False)
    first = _open_first(window, case_folder, result_of)
    model_mask = first.editor.mask.copy()
    _edit(window, first, mouse_drag)
    edited = first.editor.mask.copy()

    window.actions.next_case.trigger()
    second = result_of(window)
    assert second.case.name == "ISIC_0024311.jpg" and not window.actions.undo.isEnabled()
    window.actions.previous_case.trigger()
    back = result_of(window)
    np.testing.assert_array_equal(back.editor.mask, edited)
    window.actions.undo.trigger()
    window.actions.undo.trigger()
    np.testing.assert_array_equal(back.editor.mask, model_mask)
