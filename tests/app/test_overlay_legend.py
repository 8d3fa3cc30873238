"""Overlay colours and the on-canvas legend: colour-blind-safe pens that differ in style too,
outline only by default, and a legend naming exactly what is drawn."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from lesionviewer.app.views.legend import LEGEND_LABELS
from lesionviewer.app.views.overlays import PolygonPreviewItem
from lesionviewer.app.preferences import AppSettings, load_settings

pytestmark = pytest.mark.gui
OKABE_ITO = {"#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7",
             "#000000"}


def test_defaults_are_okabe_ito_outline_only_and_the_pens_differ_in_style():
    s = AppSettings()
    colours = [s.contour_colour, s.reference_colour, s.sample_colour, s.region_colour]
    assert set(colours) <= OKABE_ITO and len(set(colours)) == len(colours)
    assert s.overlay_visible["mask"] is False and s.overlay_visible["contour"] is True
    assert s.overlay_opacity["samples"] == 1.0


def test_the_polygon_preview_looks_like_no_overlay(make_window, case_folder, result_of):
    window = make_window(background=False)
    window.open_paths([case_folder / "ISIC_0000068.jpg"])
    result_of(window)
    reference = window.view.items["reference"].pen()
    preview = PolygonPreviewItem()
    for subtract in (False, True):
        preview.set_points([(1, 1), (5, 1), (5, 5)], subtract=subtract)
        pen = preview.pen()
        assert pen.style() != reference.style() and pen.color() != reference.color()
        assert pen.style() != window.view.items["contour"].pen().style()


def test_old_default_colours_and_fill_give_way_to_the_new_defaults(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({
        "contour_colour": "#00ffff", "sample_colour": "#123456", "mask_colour": "#00e5ff",
        "overlay_visible": {"mask": True, "contour": True, "variance": True}}))
    s = load_settings(tmp_path)
    assert s.contour_colour == AppSettings().contour_colour  # v1's default, never chosen
    assert s.sample_colour == "#123456"  # the user's own choice stays
    assert s.overlay_visible["mask"] is False and s.overlay_visible["variance"] is True


def test_the_legend_lists_only_the_overlays_drawn(make_window, case_folder, result_of, qtbot):
    window = make_window(background=False)
    legend = window.legend
    assert legend.labels() == []  # nothing open: no legend
    window.open_paths([case_folder])
    cur = result_of(window)
    assert cur.bundle.reference_mask is not None
    assert legend.isVisible() and legend.parent() is window.canvas
    assert legend.labels() == [LEGEND_LABELS["contour"], LEGEND_LABELS["reference"]]

    def press(key):
        QTest.keyClick(QApplication.focusWidget(), key)

    press(Qt.Key_V)
    press(Qt.Key_M)
    window.side_panel.overlay_checks["samples"].setChecked(True)
    assert legend.names() == ["contour", "mask", "reference", "samples", "variance"]
    # Grown while on screen, the legend is sized to hold every row (it once stayed a sliver).
    qtbot.wait(50)
    hint = legend.sizeHint()
    assert legend.width() >= hint.width() and legend.height() >= hint.height() >= 5 * 10
    window.side_panel.overlay_checks["contour"].setChecked(False)
    window.side_panel.overlay_checks["reference"].setChecked(False)
    press(Qt.Key_V)
    assert legend.names() == ["mask", "samples"]
    window.side_panel.overlay_checks["mask"].setChecked(False)
    window.side_panel.overlay_checks["samples"].setChecked(False)
    assert legend.labels() == [] and not legend.isVisible()


def test_the_legend_swatches_use_the_overlays_colours(make_window, case_folder, result_of):
    window = make_window(background=False)
    window.open_paths([case_folder])
    result_of(window)
    window.side_panel.overlay_checks["samples"].setChecked(True)
    entries = {e.name: e for e in window.legend._entries}
    view = window.view
    for name in ("contour", "reference"):
        pen = view.items[name].pen()
        assert QColor(entries[name].colour) == pen.color() and entries[name].style == pen.style()
    assert QColor(entries["samples"].colour) == view.items["samples"].pen().color()
    assert entries["samples"].width < entries["contour"].width
