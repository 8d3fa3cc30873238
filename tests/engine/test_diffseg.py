"""DiffSeg's pieces: noise difference, scaling and threshold, hole filling, field of view."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lesionviewer.engine.diffseg import (
    SOFTNESS,
    DiffSegParams,
    Statistic,
    difference_probability,
    error_difference,
    field_of_view,
    fill_holes,
    noise_difference,
    otsu_threshold,
    scaled_difference,
)


def ring(size=21, outer=8, inner=4):
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size // 2, xx - size // 2)
    return (r <= outer) & (r > inner), r <= inner


def test_fill_holes_fills_a_ring_but_not_a_notch_open_to_the_border():
    mask, hole = ring()
    filled = fill_holes(mask)
    assert filled[hole].all() and (filled == (mask | hole)).all()

    notched = np.zeros((12, 12), bool)
    notched[2:10, 2:10] = True
    notched[0:6, 5:7] = False  # a channel from the top edge into the square's middle
    assert (fill_holes(notched) == notched).all()


def test_fill_holes_closes_a_thin_diagonal_outline():
    # A one-pixel diamond is closed for 8-connected foreground, so its inside is a hole
    # (the background is 4-connected), as a thin rim at the working resolution often is.
    yy, xx = np.mgrid[:15, :15]
    distance = np.abs(yy - 7) + np.abs(xx - 7)
    outline = distance == 5
    filled = fill_holes(outline)
    assert (filled == (distance <= 5)).all()


def test_fill_holes_leaves_an_empty_and_a_full_mask_alone():
    assert not fill_holes(np.zeros((5, 6), bool)).any()
    assert fill_holes(np.ones((5, 6), bool)).all()


def test_otsu_threshold_lands_between_two_modes():
    rng = np.random.default_rng(0)
    low = rng.normal(0.2, 0.03, 3000)
    high = rng.normal(0.75, 0.03, 1000)
    theta = otsu_threshold(np.concatenate([low, high]))
    assert 0.2 < theta < 0.75
    assert (high >= theta).all()
    # The answer is a bin centre (256 bins), so the very top of the low mode may sit within
    # half a bin above it, as with skimage's threshold_otsu.
    assert np.mean(low < theta) > 0.999 and low.max() < theta + 1 / 512


def test_field_of_view_masks_a_dark_border_ring_but_not_a_dark_lesion():
    rgb = np.full((60, 80, 3), 190, np.uint8)
    rgb[:6], rgb[-6:], rgb[:, :6], rgb[:, -6:] = 10, 10, 10, 10  # dermoscope vignette
    rgb[25:35, 35:45] = 12  # a very dark lesion in the middle
    fov = field_of_view(rgb)
    assert not fov[:6].any() and not fov[:, -6:].any()
    assert fov[25:35, 35:45].all()
    assert fov[10:50, 10:70].all()


def test_noise_difference_is_the_per_pixel_l1_over_channels():
    lesion = torch.zeros((1, 3, 2, 2))
    healthy = torch.zeros((1, 3, 2, 2))
    lesion[0, :, 0, 0] = torch.tensor([1.0, -2.0, 0.5])
    healthy[0, :, 0, 0] = torch.tensor([0.0, 1.0, 0.5])  # |1| + |-3| + 0 = 4
    healthy[0, 1, 1, 1] = -0.25
    d = noise_difference(lesion, healthy)
    assert d.dtype == np.float32 and d.shape == (1, 2, 2)
    np.testing.assert_array_equal(d[0], [[4.0, 0.0], [0.0, 0.25]])


def grid_difference():
    """A 20x20 difference whose 99th percentile is 1, so scaling leaves it unchanged;
    the other values are multiples of 1/64 (exact in float32) and include 0.375 itself."""
    values = np.tile(np.arange(64, dtype=np.float32) / 64, 7)[:392]
    d = np.concatenate([values, np.ones(8, np.float32)])
    return np.random.default_rng(1).permutation(d).reshape(20, 20)


def test_probability_is_at_least_half_exactly_where_the_scaled_difference_reaches_theta():
    d = grid_difference()
    params = DiffSegParams(smoothing_sigma=0, threshold=0.375, fill_holes=False)
    scaled = scaled_difference(d, params, None)
    np.testing.assert_array_equal(scaled, d)
    assert (scaled == 0.375).any() and (scaled == 0.375 - 1 / 64).any()
    p = difference_probability(d, params, None)
    assert p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
    np.testing.assert_array_equal(p >= 0.5, scaled >= 0.375)


def test_otsu_is_used_when_theta_is_unset():
    d = grid_difference()
    params = DiffSegParams(smoothing_sigma=0, threshold=None, fill_holes=False)
    theta = otsu_threshold(scaled_difference(d, params, None))
    assert 0.1 < theta < 0.9
    np.testing.assert_array_equal(difference_probability(d, params, None) >= 0.5, d >= theta)


def test_the_rim_a_large_lesion_lights_up_becomes_a_filled_disk():
    mask, hole = ring(size=41, outer=14, inner=8)
    d = mask.astype(np.float32)
    p = difference_probability(d, DiffSegParams(smoothing_sigma=0, threshold=0.5, fill_holes=True), None)
    assert (p[hole] >= 0.5 + SOFTNESS - 1e-6).all()
    assert (p[~(mask | hole)] < 0.5).all()
    unfilled = difference_probability(d, DiffSegParams(smoothing_sigma=0, threshold=0.5, fill_holes=False), None)
    assert (unfilled[hole] < 0.5).all()


def test_pixels_outside_the_field_of_view_are_never_lesion():
    d = grid_difference()
    valid = np.ones_like(d, bool)
    valid[:, :4] = False
    p = difference_probability(d, DiffSegParams(smoothing_sigma=1.0, threshold=0.3, fill_holes=False), valid)
    assert (p[:, :4] < 0.5).all()
    assert (p[:, 4:] >= 0.5).any()


def test_params_from_a_config_ignore_keys_they_do_not_know():
    params = DiffSegParams.from_dict({"threshold": 0.4, "smoothing_sigma": 1.5, "note": "tuned on val"})
    assert params == DiffSegParams(smoothing_sigma=1.5, threshold=0.4)


@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_scaled_difference_is_in_zero_to_one(sigma):
    d = np.random.default_rng(2).gamma(2.0, 1.0, (30, 30)).astype(np.float32)
    scaled = scaled_difference(d, DiffSegParams(smoothing_sigma=sigma), None)
    assert scaled.min() >= 0 and scaled.max() == 1.0
    assert np.mean(scaled == 1.0) <= 0.02 + 1e-9


def test_error_difference_is_positive_where_the_lesion_label_explains_the_noise():
    noise = torch.zeros((1, 3, 1, 3))
    noise[0, :, 0, 0] = torch.tensor([1.0, 0.0, -1.0])
    lesion = noise.clone()
    healthy = noise.clone()
    healthy[0, 0, 0, 0] += 2.0  # pixel 0: healthy is off by 2 in one channel -> E = 4 - 0
    lesion[0, 1, 0, 1] -= 0.5  # pixel 1: lesion is off by 0.5 -> E = 0 - 0.25
    e = error_difference(lesion, healthy, noise.double())
    assert e.dtype == np.float32 and e.shape == (1, 1, 3)
    np.testing.assert_allclose(e[0, 0], [4.0, -0.25, 0.0])


def test_the_signed_statistic_is_scaled_to_minus_one_to_one_and_blank_outside_the_view():
    rng = np.random.default_rng(3)
    e = rng.normal(0, 1, (30, 30)).astype(np.float32)
    valid = np.ones_like(e, bool)
    valid[:3] = False
    params = DiffSegParams(smoothing_sigma=0, statistic=Statistic.ERROR_DIFFERENCE)
    scaled = scaled_difference(e, params, valid)
    assert scaled.min() == -1.0 and scaled.max() == 1.0
    assert (scaled[:3] == -1.0).all()
    inside = scaled[valid]
    assert (inside < 0).mean() == pytest.approx((e[valid] < 0).mean())  # the sign survives scaling


def test_the_signed_statistic_thresholds_exactly_and_otsu_splits_its_two_modes():
    rng = np.random.default_rng(4)
    e = np.where(rng.random((40, 40)) < 0.3, rng.normal(0.5, 0.05, (40, 40)), rng.normal(-0.6, 0.05, (40, 40)))
    fixed = DiffSegParams.from_dict(
        {"smoothing_sigma": 0, "threshold": -0.2, "fill_holes": False, "statistic": "error_difference"})
    scaled = scaled_difference(e, fixed, None)
    np.testing.assert_array_equal(difference_probability(e, fixed, None) >= 0.5, scaled >= -0.2)
    otsu = dataclasses.replace(fixed, threshold=None)
    np.testing.assert_array_equal(difference_probability(e, otsu, None) >= 0.5, e > 0)


def test_the_statistic_round_trips_through_the_config_and_unknown_ones_are_refused():
    params = DiffSegParams.from_dict({"statistic": "error_difference", "threshold": 0.1})
    assert params.statistic is Statistic.ERROR_DIFFERENCE
    assert DiffSegParams.from_dict(params.to_dict()) == params
    assert params.to_dict()["statistic"] == "error_difference"
    with pytest.raises(ValueError):
        DiffSegParams.from_dict({"statistic": "l2"})
