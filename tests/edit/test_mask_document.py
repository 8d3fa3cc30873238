"""Brush, eraser, polygon and region tools: what the clinician sees change, and only that."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesionviewer.edit.mask_document import MIN_RADIUS, MaskDelta, MaskDocument, Tool


def _disk_count(radius: float) -> int:
    """Pixels whose centre lies within radius of a point on a pixel centre."""
    r = math.ceil(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return int(np.count_nonzero(yy**2 + xx**2 <= radius**2))


def _doc(h=60, w=80, fill=False):
    return MaskDocument(np.full((h, w), fill, dtype=bool))


def test_single_click_paints_a_round_disk_centred_on_the_pixel():
    doc = _doc()
    delta = doc.paint_stroke([(20.5, 30.5)], radius=3, value=True)
    assert doc.lesion_pixels == _disk_count(3) == 29
    assert delta.bbox == (27, 34, 17, 24)
    assert doc.mask[30, 20] and doc.mask[30, 23] and doc.mask[27, 20]
    assert not doc.mask[27, 23]  # corner of the box lies outside the circle


def test_tiny_radius_still_paints_the_pixel_under_the_cursor():
    doc = _doc()
    doc.paint_stroke([(5.9, 7.1)], radius=0.1, value=True)
    assert doc.mask[7, 5] and doc.lesion_pixels >= 1
    assert MIN_RADIUS == pytest.approx(math.sqrt(0.5))


def test_fast_mouse_leaves_no_gaps_between_far_apart_points():
    doc = _doc(100, 200)
    doc.paint_stroke([(5.5, 50.5), (195.5, 50.5)], radius=2, value=True)
    assert doc.mask[50, 5:196].all()  # continuous line along the row
    assert doc.mask[48:53, 10:190].all() and not doc.mask[47, 10:190].any()
    diag = _doc(100, 100)
    diag.paint_stroke([(2.5, 2.5), (97.5, 97.5)], radius=1, value=True)
    assert all(diag.mask[i, i] for i in range(2, 98))


def test_stroke_is_clipped_to_the_image_and_outside_strokes_change_nothing():
    doc = _doc(20, 30)
    delta = doc.paint_stroke([(-10, 5.5), (5.5, 5.5)], radius=2, value=True)
    assert delta.bbox[2] == 0 and doc.mask[5, 0:6].all()
    assert doc.paint_stroke([(-50, -50), (-40, -60)], radius=3, value=True) is None
    assert doc.paint_stroke([], radius=3, value=True) is None


def test_eraser_removes_and_the_delta_holds_only_the_changed_box():
    doc = _doc(fill=True)
    changes = []
    doc.add_listener(changes.append)
    delta = doc.paint_stroke([(40.5, 30.5)], radius=2, value=False)
    assert delta.label == "eraser" and delta.pixels_removed == _disk_count(2) and delta.pixels_added == 0
    assert delta.bbox == (28, 33, 38, 43)
    assert delta.before.all() and delta.after.sum() == 25 - _disk_count(2)
    assert changes == [delta.bbox]
    assert doc.paint_stroke([(40.5, 30.5)], radius=2, value=False) is None  # nothing left to erase
    assert changes == [delta.bbox]  # and nobody was told


def test_undo_and_redo_restore_exactly():
    rng = np.random.default_rng(0)
    start = rng.random((40, 50)) > 0.5
    doc = MaskDocument(start)
    delta = doc.paint_stroke([(3, 3), (45, 30), (10, 38)], radius=4, value=True)
    after = doc.mask.copy()
    doc.apply(delta, forward=False)
    np.testing.assert_array_equal(doc.mask, start)
    doc.apply(delta, forward=True)
    np.testing.assert_array_equal(doc.mask, after)


def test_mask_is_a_read_only_view_and_the_input_is_copied():
    source = np.zeros((5, 5), bool)
    doc = MaskDocument(source)
    with pytest.raises(ValueError):
        doc.mask[0, 0] = True
    doc.paint_stroke([(2.5, 2.5)], 1, True)
    assert not source.any()
    assert doc.shape == (5, 5)
    with pytest.raises(ValueError):
        MaskDocument(np.zeros((5, 5, 3), bool))


def test_live_stroke_paints_as_it_goes_and_finishes_as_one_delta():
    doc = _doc()
    seen = []
    doc.add_listener(seen.append)
    stroke = doc.begin_stroke(radius=2, value=True)
    for x in range(10, 60, 10):
        stroke.add_point(x + 0.5, 20.5)
    assert len(seen) == 5 and doc.mask[20, 10:51].all()  # visible before release
    delta = stroke.finish()
    assert delta.label == "brush"
    reference = _doc()
    expected = reference.paint_stroke([(x + 0.5, 20.5) for x in range(10, 60, 10)], 2, True)
    assert delta.bbox == expected.bbox
    np.testing.assert_array_equal(delta.after, expected.after)
    doc.apply(delta, forward=False)
    assert not doc.mask.any()


def test_live_stroke_over_existing_lesion_undoes_to_the_original():
    start = np.zeros((30, 30), bool)
    start[10:20, 10:20] = True
    doc = MaskDocument(start)
    stroke = doc.begin_stroke(radius=3, value=False)
    for point in [(5, 15), (15, 15), (25, 15), (15, 15)]:  # crosses its own path
        stroke.add_point(*point)
    delta = stroke.finish()
    assert delta.pixels_added == 0 and delta.pixels_removed > 0
    doc.apply(delta, forward=False)
    np.testing.assert_array_equal(doc.mask, start)


def test_cancelled_stroke_leaves_the_mask_as_it_was():
    doc = _doc()
    stroke = doc.begin_stroke(3, True)
    stroke.add_point(10, 10)
    stroke.add_point(30, 30)
    stroke.cancel()
    assert not doc.mask.any()
    with pytest.raises(RuntimeError):
        stroke.add_point(1, 1)


def test_fill_polygon_adds_and_removes_including_the_outline():
    doc = _doc()
    square = [(10, 10), (20, 10), (20, 20), (10, 20)]
    delta = doc.fill_polygon(square, True)
    assert delta.label == "polygon add"
    assert delta.bbox == (10, 21, 10, 21) and doc.lesion_pixels == 121
    delta2 = doc.fill_polygon([(0, 0), (100, 0), (100, 15.2), (0, 15.2)], False)
    assert delta2.label == "polygon remove" and delta2.pixels_removed == 6 * 11  # rows 10..15: y=15.2 is in row 15
    assert doc.fill_polygon([(1, 1), (5, 5)], True) is None  # a line is not an area
    assert doc.fill_polygon([(-30, -30), (-20, -30), (-20, -20)], True) is None


def test_fill_polygon_triangle_area_is_close_to_geometry():
    doc = _doc(200, 200)
    doc.fill_polygon([(20, 20), (180, 20), (20, 180)], True)
    assert abs(doc.lesion_pixels - 160 * 160 / 2) < 2 * 160 + 10  # outline pixels only


def test_fill_holes_fills_enclosed_background_but_not_bays_open_to_the_border():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[5:8, 5:8] = False  # enclosed hole
    mask[:, 15] = True
    mask[0:5, 16:20] = False  # region right of the wall touches the border: stays background
    doc = MaskDocument(mask)
    delta = doc.fill_holes()
    assert delta.label == "fill holes" and delta.bbox == (5, 8, 5, 8) and delta.pixels_added == 9
    assert doc.mask[2:12, 2:12].all() and not doc.mask[0:5, 16:].any()
    assert doc.fill_holes() is None
    assert MaskDocument(np.zeros((5, 5), bool)).fill_holes() is None


def test_fill_holes_closes_a_ring_with_only_a_diagonal_gap():
    ring = np.zeros((9, 9), bool)
    ring[2, 2:7] = ring[6, 2:7] = ring[2:7, 2] = ring[2:7, 6] = True
    ring[2, 6] = False
    ring[1, 7] = True  # lesion pixels touch only diagonally at the corner: still closed (8-connected)
    doc = MaskDocument(ring)
    doc.fill_holes()
    assert doc.mask[3:6, 3:6].all()


def test_keep_largest_region_uses_8_connectivity():
    mask = np.zeros((20, 20), bool)
    mask[1:4, 1:4] = True  # 9 px
    mask[4, 4] = mask[5, 5] = True  # diagonal tail: same region -> 11 px
    mask[10:13, 10:13] = True  # 9 px, separate
    mask[18, 18] = True
    doc = MaskDocument(mask)
    delta = doc.keep_largest_region()
    assert delta.label == "keep largest region" and delta.pixels_removed == 10
    assert doc.lesion_pixels == 11 and doc.mask[5, 5]
    assert doc.keep_largest_region() is None


def test_reset_to_is_one_undoable_step_and_checks_the_shape():
    doc = _doc(10, 10)
    doc.paint_stroke([(2, 2)], 1, True)
    edited = doc.mask.copy()
    consensus = np.zeros((10, 10), bool)
    consensus[5:9, 5:9] = True
    delta = doc.reset_to(consensus)
    assert delta.label == Tool.RESET.value
    np.testing.assert_array_equal(doc.mask, consensus)
    doc.apply(delta, forward=False)
    np.testing.assert_array_equal(doc.mask, edited)
    with pytest.raises(ValueError):
        doc.reset_to(np.zeros((3, 3), bool))
    assert doc.reset_to(edited) is None


def test_delta_memory_is_bit_packed():
    doc = _doc(1000, 1000)
    delta = doc.fill_polygon([(0, 0), (1000, 0), (1000, 1000), (0, 1000)], True)
    assert delta.shape == (1000, 1000)
    assert delta.nbytes < 2 * 1000 * 1000 / 8 + 200  # 2 bits per pixel of the box
    with pytest.raises(ValueError):
        MaskDelta((0, 2, 0, 2), np.zeros((2, 2), bool), np.zeros((3, 2), bool), "brush")


def test_apply_refuses_a_delta_from_a_bigger_image():
    big = _doc(50, 50).paint_stroke([(45, 45)], 3, True)
    with pytest.raises(ValueError):
        _doc(10, 10).apply(big)


def test_listener_can_be_removed():
    doc = _doc()
    seen = []
    doc.add_listener(seen.append)
    doc.remove_listener(seen.append)
    doc.paint_stroke([(5, 5)], 2, True)
    assert seen == []
