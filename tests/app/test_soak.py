"""A day of paging in minutes: the app must neither crash nor leak references while it draws.

PySide6-Essentials 6.12.0 on Python 3.11 dropped one reference to ``None`` per call of a Qt
method returning nothing; outlines drawn with one ``lineTo`` per point aborted the app
(``Fatal Python error: none_dealloc``) after a few case switches. Python 3.12+ makes ``None``
immortal and hides it, so these tests mean most on 3.11, the version CI runs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.gui

# None's count wanders by a handful as objects come and go; a leaking binding loses one per
# call, thousands per drawn outline, so this margin separates the two by orders of magnitude.
NONE_SLACK = 200
TEST_DATA = Path(__file__).resolve().parents[1] / "data"
CASES = ("ISIC_0000068", "ISIC_0024311")


def _none_drift(action) -> int:
    before = sys.getrefcount(None)
    action()
    return sys.getrefcount(None) - before


def _ring(n: int, radius: float = 100.0) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([150 + radius * np.cos(angle), 150 + radius * np.sin(angle)], 1)


def test_drawing_outlines_keeps_none_referenced(qtbot):
    """10,000 outline points through every path the app draws them with."""
    from lesionviewer.app.views.overlays import (ContourItem, PolygonPreviewItem, SampleContoursItem,
                                           contours_path)

    contours = [_ring(5000), _ring(5000, 50.0)]
    outline, samples, polygon = ContourItem(), SampleContoursItem(), PolygonPreviewItem()

    assert abs(_none_drift(lambda: contours_path(contours))) < NONE_SLACK
    assert abs(_none_drift(lambda: outline.set_contours(contours))) < NONE_SLACK
    assert abs(_none_drift(lambda: samples.set_samples([contours] * 4))) < NONE_SLACK
    vertices = [tuple(p) for p in _ring(40)]

    def rubber_band():  # a polygon being drawn is redrawn on every mouse move
        for i in range(100):
            polygon.set_points(vertices, cursor=(5.0, float(i)))

    assert abs(_none_drift(rubber_band)) < NONE_SLACK


def test_contours_path_is_the_outline_closed(qtbot):
    from lesionviewer.app.views.overlays import contours_path

    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    path = contours_path([square, square + 20, np.zeros((1, 2))])  # a 1-point contour is dropped
    rect = path.boundingRect()
    assert (rect.left(), rect.top(), rect.right(), rect.bottom()) == (0, 0, 30, 30)
    assert path.elementCount() == 10  # 4 corners + the closing corner, twice
    assert path.contains(path.pointAtPercent(0.0))
    assert contours_path([]).isEmpty()


def _varied_cases(folder, count: int) -> list[str]:
    """``count`` distinct photos (own content hash) made from the two real test cases by flips,
    rotations and crops, each with a matching reference mask so every overlay has something."""
    names = []
    for i in range(count):
        case = CASES[i % 2]
        rgb = cv2.imread(str(TEST_DATA / f"{case}.jpg"))
        mask = cv2.imread(str(TEST_DATA / f"{case}_mask.png"), cv2.IMREAD_GRAYSCALE)
        k = i // 2
        rgb, mask = np.rot90(rgb, k % 4), np.rot90(mask, k % 4)
        if (k // 4) % 2:
            rgb, mask = rgb[:, ::-1], mask[:, ::-1]
        crop = (k // 8) * 3
        if crop:
            rgb, mask = rgb[crop:-crop, crop:-crop], mask[crop:-crop, crop:-crop]
        name = f"case_{i:03d}"
        cv2.imwrite(str(folder / f"{name}.png"), np.ascontiguousarray(rgb))
        cv2.imwrite(str(folder / f"{name}_mask.png"), np.ascontiguousarray(mask))
        names.append(name)
    return names


@pytest.mark.slow
def test_paging_through_52_analysed_cases_with_every_overlay(make_window, tmp_path, qtbot):
    """Open 52 cases, let them all be analysed, then page through them three times with the
    mask, variance, sample outlines and reference mask all shown; the app is still alive, every
    case showed its result, and None's reference count did not fall."""
    from lesionviewer.app.services.case import CaseStatus

    folder = tmp_path / "day"
    folder.mkdir()
    count = 52
    _varied_cases(folder, count)
    window = make_window(background=True)
    for check in window.side_panel.overlay_checks.values():
        check.setChecked(True)

    window.open_paths([folder])
    cases = window.session.cases.cases
    qtbot.waitUntil(lambda: len(cases) == count and all(c.status == CaseStatus.ANALYSED
                                                         for c in cases), timeout=240_000)

    start = sys.getrefcount(None)
    shown = set()
    for sweep in range(3):
        for _ in range(count):
            window.actions.next_case.trigger() if sweep % 2 == 0 else \
                window.actions.previous_case.trigger()
            qtbot.waitUntil(lambda: window.session.current is not None
                            and window.session.current.analysis is not None
                            and window.view.editor is window.session.current.editor,
                            timeout=30_000)
            shown.add(window.session.current.case.name)
        window.actions.next_case.trigger()
    drift = sys.getrefcount(None) - start

    assert len(shown) == count
    assert window.isVisible()
    assert drift > -NONE_SLACK, f"None lost {-drift} references while paging"
    shutil.rmtree(folder, ignore_errors=True)
