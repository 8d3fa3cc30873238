"""Skin tone from the individual typology angle (ITA) of the skin around the lesion.

ITA = arctan((L* - 50) / b*) in degrees (Chardon et al. 1991), read on CIELab pixels that are
neither lesion, nor the dermoscope's dark vignette, nor hair, nor specular glare. Group bounds
follow Del Bino & Bernerd 2013, as used by fairness audits of ISIC (Kinyanjui et al. 2020).
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


def ita_group(ita_degrees: float) -> str:
    if not np.isfinite(ita_degrees):
        return "unknown"
    for lower, name in ITA_GROUPS:
        if ita_degrees > lower:
            return name
    return "dark"


def estimate_skin_tone(rgb: np.ndarray, lesion: np.ndarray) -> SkinTone:
    """rgb: HxWx3 uint8 RGB; lesion: HxW bool (at the same size). Returns the ITA estimate."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    l_star = lab[..., 0] * (100.0 / 255.0)
    b_star = lab[..., 2] - 128.0
    margin = max(3, int(round(0.03 * max(lesion.shape))))
    near_lesion = cv2.dilate(lesion.astype(np.uint8), np.ones((margin, margin), np.uint8)) > 0
    usable = ~near_lesion & (l_star > 15) & (l_star < 98)  # vignette and hair dark; glare bright
    count = int(np.count_nonzero(usable))
    if count < MIN_SKIN_PIXELS:
        return SkinTone(ita_degrees=float("nan"), group="unknown", skin_pixels=count)
    l_med = float(np.median(l_star[usable]))
    b_med = float(np.median(b_star[usable]))
    ita = float(np.degrees(np.arctan2(l_med - 50.0, b_med))) if b_med > 0 else (90.0 if l_med > 50 else -90.0)
    return SkinTone(ita_degrees=round(ita, 2), group=ita_group(ita), skin_pixels=count)
