"""Skin tone: ITA on the skin around the lesion, grouped as Del Bino & Bernerd 2013."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from lesionviewer.engine.skintone import (MIN_B_STAR, MIN_SKIN_PIXELS, estimate_skin_tone,
                                          ita_group)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"
# Sample photos whose "skin" has a blue, grey or magenta cast (median b* <= 0): the old
# estimate pinned all four at exactly ITA 90.0.
CAST_PHOTOS = ("ISIC_0000068", "ISIC_0027287", "ISIC_0027533", "ISIC_0027800")


@pytest.mark.parametrize(
    ("ita", "group"),
    [(70.0, "very light"), (55.01, "very light"), (55.0, "light"), (41.01, "light"),
     (41.0, "intermediate"),
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


@pytest.mark.parametrize(("lab", "group"), [((70.0, 12.0, 15.0), "light"),
                                            ((45.0, 15.0, 20.0), "brown"),
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


def test_the_dark_vignette_and_its_edge_are_not_skin():
    rgb = patch_of_lab(70.0, 12.0, 15.0)
    rgb[:8], rgb[-8:] = 0, 0
    tone = estimate_skin_tone(rgb, np.zeros((60, 80), bool))
    assert tone.ita_degrees == pytest.approx(53.13, abs=1.0)
    assert 38 * 80 <= tone.skin_pixels < 44 * 80  # the frame and a band along its edge are out


def test_too_little_skin_is_unknown():
    rgb = patch_of_lab(70.0, 12.0, 15.0)
    tone = estimate_skin_tone(rgb, np.ones((60, 80), bool))
    assert tone.group == "unknown" and math.isnan(tone.ita_degrees)
    assert tone.skin_pixels < MIN_SKIN_PIXELS


@pytest.mark.parametrize("b_star", [-6.0, -0.5, 0.0, 1.0, MIN_B_STAR - 0.5])
def test_a_colour_cast_is_not_measurable_rather_than_pinned_at_90(b_star):
    """Skin is yellowish (b* > 0). A blue or grey cast makes the "skin" b* <= ~0, where
    arctan((L* - 50) / b*) runs off to +-90 degrees: that says nothing about the patient."""
    tone = estimate_skin_tone(patch_of_lab(75.0, 8.0, b_star), np.zeros((60, 80), bool))
    assert math.isnan(tone.ita_degrees) and tone.group == "unknown"
    assert tone.skin_pixels == 60 * 80  # enough skin: it is the colour that cannot be read


def test_just_above_the_cast_limit_an_angle_is_given():
    tone = estimate_skin_tone(patch_of_lab(75.0, 8.0, MIN_B_STAR + 1.0), np.zeros((60, 80), bool))
    expected = math.degrees(math.atan(25.0 / (MIN_B_STAR + 1.0)))
    assert tone.ita_degrees == pytest.approx(expected, abs=1.5)


def test_clipped_pixels_are_not_skin():
    """An over-exposed patch (a channel at 255) has lost its colour: it must not count."""
    rgb = patch_of_lab(70.0, 12.0, 15.0)
    rgb[:, :50] = (255, 190, 235)  # red channel clipped over most of the photo: magenta
    tone = estimate_skin_tone(rgb, np.zeros((60, 80), bool))
    assert tone.ita_degrees == pytest.approx(53.13, abs=1.0)
    assert tone.skin_pixels <= 60 * 30


def _sample_photos():
    if not SAMPLES.is_dir():
        return []
    return sorted(SAMPLES.glob("*.jpg")) + sorted(SAMPLES.glob("*/*.jpg"))


@pytest.mark.skipif(not _sample_photos(), reason="the sample photos (../shared/data/samples) "
                    "are not present on this machine")
def test_no_real_sample_is_pinned_at_the_end_of_the_scale():
    from lesionviewer.io.images import load_image

    photos = _sample_photos()
    assert len(photos) >= 25
    tones = {}
    for photo in photos:
        rgb = load_image(photo).rgb
        lesion = cv2.imread(str(photo.with_name(photo.stem + "_mask.png")), cv2.IMREAD_GRAYSCALE)
        tones[photo.stem] = estimate_skin_tone(rgb, lesion > 127)
    for stem, tone in tones.items():
        if math.isnan(tone.ita_degrees):
            assert tone.group == "unknown", stem
        else:
            assert -89.0 < tone.ita_degrees < 89.0 and tone.group != "unknown", (stem, tone)
    for stem in CAST_PHOTOS:
        assert tones[stem].group == "unknown", (stem, tones[stem])
    measured = [t for t in tones.values() if t.group != "unknown"]
    assert len(measured) >= 15  # the rule leaves most photos measurable
