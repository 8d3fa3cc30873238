"""Skin tone from the individual typology angle (ITA) of the skin around the lesion.

ITA = arctan((L* - 50) / b*) in degrees (Chardon et al. 1991), read on CIELab pixels that are
neither lesion, nor the dermoscope's dark vignette (and its soft edge), nor hair, nor clipped
or glaring pixels. Group bounds follow Del Bino & Bernerd 2013, as used by fairness audits of
ISIC (Kinyanjui et al. 2020).

The angle is a skin measure only while the skin looks like skin: human skin is yellowish
(b* > 0, melanin and carotene). Many dermoscopy photos carry a blue,
grey, green or magenta cast from the lighting or the white balance, and then b* of the "skin"
is near zero or negative. arctan((L* - 50) / b*) then runs off to +-90 degrees (the old code
pinned every such photo at exactly 90.0: 4 of the 25 sample photos), a number that says
nothing about the patient. Such photos are reported as not measurable (NaN, "unknown").
"""

from __future__ import annotations

import cv2
import numpy as np

from lesionviewer.engine.analysis import SkinTone

# (lower bound in degrees, group), checked from the top
ITA_GROUPS = ((55.0, "very light"), (41.0, "light"), (28.0, "intermediate"), (10.0, "tan"),
              (-30.0, "brown"), (-float("inf"), "dark"))
GROUP_NAMES = tuple(name for _, name in ITA_GROUPS)
MIN_SKIN_PIXELS = 50
DARK_L = 15.0  # L* below: vignette, frame, hair, shadow
GLARE_L = 98.0  # L* above: specular glare
CLIPPED = 250  # an RGB channel at or above: clipped, so its Lab colour is not the skin's
# Median skin b* below this: a colour cast, not skin (see the module docstring). Over 509
# isic-train photos (every 5th) the median skin b* has its 10th percentile at 1.2 and its 25th
# at 4.9; the 6 of the 25 sample photos below 3 have grey, grey-green, blue-grey or magenta
# "skin" (median RGB e.g. 170,176,173 or 254,205,247), none a yellowish one.
MIN_B_STAR = 3.0


def ita_group(ita_degrees: float) -> str:
    if not np.isfinite(ita_degrees):
        return "unknown"
    for lower, name in ITA_GROUPS:
        if ita_degrees > lower:
            return name
    return "dark"


def skin_pixels(rgb: np.ndarray, lesion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELab of the photo (HxWx3 float32, L* 0..100, a*/b* signed) and the HxW bool mask of
    pixels usable as skin: away from the lesion and from dark areas (the vignette's soft edge
    and hair borders blend into the skin), not glare, no clipped channel."""
    rgb = np.ascontiguousarray(rgb)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    l_star = lab[..., 0]
    margin = max(3, int(round(0.03 * max(lesion.shape))))
    kernel = np.ones((margin, margin), np.uint8)
    dark = l_star < DARK_L
    excluded = cv2.dilate((lesion.astype(bool) | dark).astype(np.uint8), kernel) > 0
    clipped = rgb.max(axis=-1) >= CLIPPED
    usable = ~excluded & ~clipped & (l_star < GLARE_L)
    return lab, usable


def estimate_skin_tone(rgb: np.ndarray, lesion: np.ndarray) -> SkinTone:
    """rgb: HxWx3 uint8 RGB; lesion: HxW bool (at the same size). Returns the ITA estimate,
    or ``ita_degrees`` NaN and group "unknown" when it cannot be measured (too few skin pixels,
    or skin whose colour is set by a colour cast: median b* < MIN_B_STAR)."""
    lab, usable = skin_pixels(rgb, lesion)
    count = int(np.count_nonzero(usable))
    unknown = SkinTone(ita_degrees=float("nan"), group="unknown", skin_pixels=count)
    if count < MIN_SKIN_PIXELS:
        return unknown
    l_med = float(np.median(lab[..., 0][usable]))
    b_med = float(np.median(lab[..., 2][usable]))
    if b_med < MIN_B_STAR:
        return unknown
    ita = float(np.degrees(np.arctan((l_med - 50.0) / b_med)))  # b* > 0: arctan is enough
    return SkinTone(ita_degrees=round(ita, 2), group=ita_group(ita), skin_pixels=count)
