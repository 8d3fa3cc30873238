"""Skin tone: ITA on the skin around the lesion, grouped as Del Bino & Bernerd 2013."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lesionviewer.engine.skintone import MIN_SKIN_PIXELS, estimate_skin_tone, ita_group


@pytest.mark.parametrize(
    ("ita", "group"),
    [(70.0, "very light"), (55.01, "very light"), (55.0, "light"), (41.01, "light"), (41.0, "intermediate"),
     (28.0, "tan"), (10.0, "brown"), (-29.99, "brown"), (-30.0, "dark"), (-80.0, "dark"),
     (float("nan"), "unknown")],
)
def test_ita_group_boundaries(ita, group):
    assert ita_group(ita) == group


def patch_of_lab(l_star: float, a_star: float, b_star: float, shape=(60, 80)) -> np.ndarray:
    """HxWx3 uint8 RGB of one CIELab colour (D65)."""
    lab = np.zeros((*shape, 3), np.float32)
    lab[:] = (l_star, a_star, b_star)
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("lab", "group"), [((70.0, 12.0, 15.0), "light"), ((45.0, 15.0, 20.0), "brown"),
                                            ((80.0, 5.0, 12.0), "very light")])
def test_a_uniform_patch_gives_its_hand_computed_ita(lab, group):
    l_star, _, b_star = lab
    expected = math.degrees(math.atan((l_star - 50) / b_star))
    tone = estimate_skin_tone(patch_of_lab(*lab), np.zeros((60, 80), bool))
    assert tone.ita_degrees == pytest.approx(expected, abs=1.0)
    assert tone.group == group
    assert tone.skin_pixels == 60 * 80


def test_lesion_pixels_do_not_count_as_skin():
    skin = patch_of_lab(70.0, 12.0, 15.0)  # ITA 53.1
    rgb = skin.copy()
    lesion = np.zeros((60, 80), bool)
    lesion[:, :50] = True  # most of the photo is a brown lesion
    rgb[lesion] = patch_of_lab(35.0, 15.0, 25.0)[lesion]
    with_mask = estimate_skin_tone(rgb, lesion)
    without = estimate_skin_tone(rgb, np.zeros_like(lesion))
    assert with_mask.ita_degrees == pytest.approx(53.13, abs=1.0)
    assert with_mask.skin_pixels < 60 * 30  # the lesion and a margin around it are left out
    assert without.ita_degrees < 0  # the lesion's colour would have won


def test_the_dark_vignette_is_not_skin():
    rgb = patch_of_lab(70.0, 12.0, 15.0)
    rgb[:8], rgb[-8:] = 0, 0
    tone = estimate_skin_tone(rgb, np.zeros((60, 80), bool))
    assert tone.ita_degrees == pytest.approx(53.13, abs=1.0)
    assert tone.skin_pixels == 44 * 80


def test_too_little_skin_is_unknown():
    rgb = patch_of_lab(70.0, 12.0, 15.0)
    tone = estimate_skin_tone(rgb, np.ones((60, 80), bool))
    assert tone.group == "unknown" and math.isnan(tone.ita_degrees)
    assert tone.skin_pixels < MIN_SKIN_PIXELS
