"""Big photos are drawn from display-sized copies (a 50 MP result froze the GUI for 2 s when
drawn whole), full resolution is kept for the editor and export, and zooming in still shows
every pixel (the visible part is drawn from the full-resolution pixels)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QGraphicsScene

from lesionviewer.app.views.geometry import (DISPLAY_MAX_SIDE, display_shape, downsample_nearest,
                                       prepare_display)
from lesionviewer.app.views.scaled_items import ScaledMaskFill

pytestmark = pytest.mark.gui


def _render(item, source_rect: QRectF, size=(200, 200)) -> QImage:
    """The scene around ``source_rect`` (image pixels) as a size[0] x size[1] picture."""
    scene = QGraphicsScene()
    scene.addItem(item)
    image = QImage(size[0], size[1], QImage.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    scene.render(painter, QRectF(0, 0, *size), source_rect)
    painter.end()
    scene.removeItem(item)
    return image


def test_display_copies_are_at_most_the_display_size_and_keep_small_photos_whole():
    assert display_shape(450, 600) == (450, 600)
    assert display_shape(5773, 8660) == (round(5773 * DISPLAY_MAX_SIDE / 8660), DISPLAY_MAX_SIDE)


def test_overlays_for_a_12_mp_result_are_display_sized_with_full_size_coordinates(analysis_12mp):
    analysis = analysis_12mp
    display = prepare_display(analysis)
    assert display.variance_u8.shape == display_shape(3000, 4000) and display.shape == (3000, 4000)
    outline = np.concatenate(display.sample_contours[0])
    ys, xs = np.nonzero(analysis.sample_masks[0])
    assert abs(outline[:, 0].max() - (xs.max() + 1)) < 4  # image pixels, within a display pixel
    assert abs(outline[:, 1].min() - ys.min()) < 4
    assert len(outline) < 4 * (DISPLAY_MAX_SIDE * 2)  # display-resolution detail, not 12 MP


@pytest.fixture
def analysis_12mp():
    from lesionviewer.engine.analysis import Analysis, SkinTone

    h, w = 3000, 4000
    samples = np.zeros((4, h, w), bool)
    for i in range(4):
        m = np.zeros((h, w), np.uint8)
        cv2.circle(m, (2000, 1500), 700 + 40 * i, 1, -1)
        samples[i] = m.view(bool)
    levels = np.arange(5, dtype=np.float32) / 4
    votes = samples.sum(axis=0)
    return Analysis(levels[votes], levels[votes] >= 0.5, (levels * (1 - levels))[votes],
                    levels[votes], samples, (60, 90, 120, 150), 0.1, None,
                    SkinTone(float("nan"), "unknown", 0), "m@0", "cpu", {}, {})


def test_an_edit_redraws_the_display_copy_where_it_changed(qtbot):
    mask = np.zeros((3000, 4000), bool)
    item = ScaledMaskFill()
    item.set_mask(mask)
    assert item.display_shape() == display_shape(3000, 4000)
    edited = mask.copy()
    edited[1000:1400, 2000:2600] = True
    item.update_mask(edited, (1000, 1400, 2000, 2600))
    h, w = item.display_shape()
    np.testing.assert_array_equal(item._buffer[:h, :w].view(bool),
                                  downsample_nearest(edited, (h, w)))


def test_zooming_in_shows_full_resolution_pixels_the_display_copy_lacks(qtbot):
    mask = np.zeros((4096, 4096), bool)  # display copy: every other column, the odd ones
    mask[:, 1000] = True  # a one-pixel line in an even column: not in the display copy
    item = ScaledMaskFill()
    item.set_colour(QColor(255, 0, 0, 255))
    item.set_mask(mask)
    assert not item._buffer[:, :2048].any()

    zoomed = _render(item, QRectF(990, 990, 20, 20))  # 10 screen pixels per image pixel
    line = [QColor(zoomed.pixel(x, 100)).red() for x in range(200)]
    assert max(line[95:110]) == 255 and max(line[:80]) == 0  # the line, and only there

    fitted = _render(item, QRectF(0, 0, 4096, 4096))  # the whole mask: display copy, no crop
    assert item._crop_key is None or item._crop_key != (0, 4096, 0, 4096)
    assert fitted.width() == 200


def test_a_12_mp_case_is_shown_from_display_copies_and_edited_at_full_size(
        make_window, tmp_path, result_of, qtbot, test_data):
    photo = tmp_path / "big.jpg"
    small = cv2.imread(str(test_data / "ISIC_0024311.jpg"))
    cv2.imwrite(str(photo), cv2.resize(small, (4000, 3000), interpolation=cv2.INTER_LINEAR))
    window = make_window(background=False)
    window.open_paths([photo])
    cur = result_of(window, timeout=120_000)
    assert cur.editor.mask.shape == (3000, 4000)  # edits and export stay full size
    assert window.canvas.image_size == (3000, 4000)
    small_side = display_shape(3000, 4000)
    qtbot.waitUntil(window.canvas.photo.has_image, timeout=10_000)  # made on a pool thread
    for item in (window.canvas.photo, window.view.items["variance"], window.view.items["mask"]):
        assert item.display_shape() == small_side
        assert item.boundingRect() == QRectF(0, 0, 4000, 3000)


def test_a_smooth_photo_is_drawn_from_the_copy_nearest_the_screen_size(qtbot):
    from lesionviewer.app.views.scaled_items import ScaledPhoto

    rgb = np.full((1536, 2048, 3), 90, np.uint8)
    item = ScaledPhoto()
    item.set_display(rgb, (6000, 8000))
    widths = [image.width() for _, image in item._levels]
    assert widths == [2048, 1024, 512, 256]

    class Painter:  # what _level_for reads: the view's scale
        def __init__(self, zoom):
            from PySide6.QtGui import QTransform
            self._t = QTransform.fromScale(zoom, zoom)

        def worldTransform(self):
            return self._t

    assert item._level_for(Painter(700 / 8000)).width() == 1024  # 700 px on screen
    assert item._level_for(Painter(0.2)).width() == 2048
    assert item._level_for(Painter(200 / 8000)).width() == 256
