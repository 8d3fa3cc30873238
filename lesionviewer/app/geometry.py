"""Qt-free helpers that turn masks and maps into what the overlays draw.

Run in worker threads for big photos, so the GUI thread only wraps the results in Qt objects.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from lesionviewer.engine.analysis import Analysis

#: A contour is a closed polyline, Kx2 float32 (x, y) in image pixels, on pixel edges.
Contour = np.ndarray

VARIANCE_MAX = 0.25  # variance of a Bernoulli variable never exceeds p(1-p) <= 1/4


def mask_contours(mask: np.ndarray, min_points: int = 3) -> list[Contour]:
    """Outer and hole boundaries of an ``HxW bool`` mask, as closed (x, y) polylines.

    Points sit on pixel corners (+0.5 shift of OpenCV's pixel centres), so the line runs
    around the painted pixels rather than through them.
    """
    if mask.size == 0 or not mask.any():
        return []
    found, _ = cv2.findContours(
        mask.view(np.uint8) if mask.dtype == bool else (mask > 0).astype(np.uint8),
        cv2.RETR_CCOMP,
        cv2.CHAIN_APPROX_SIMPLE,
    )
    return [
        c.reshape(-1, 2).astype(np.float32) + 0.5 for c in found if len(c) >= min_points
    ]


def variance_levels(variance: np.ndarray) -> np.ndarray:
    """HxW float variance (0..0.25) -> HxW uint8 (0..255) for a colormap lookup."""
    scaled = np.clip(variance, 0.0, VARIANCE_MAX) * (255.0 / VARIANCE_MAX)
    return np.rint(scaled).astype(np.uint8)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two ``HxW bool`` masks; 1.0 when both are empty."""
    inter = np.count_nonzero(a & b)
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 1.0 if total == 0 else 2.0 * inter / total


@dataclasses.dataclass(frozen=True)
class DisplayData:
    """Overlay material for one analysis, prepared off the GUI thread."""

    variance_u8: np.ndarray  # HxW uint8, variance scaled 0..0.25 -> 0..255
    sample_contours: list[list[Contour]]  # one list of polylines per sample mask


def prepare_display(analysis: Analysis) -> DisplayData:
    return DisplayData(
        variance_u8=variance_levels(analysis.variance),
        sample_contours=[mask_contours(m) for m in analysis.sample_masks],
    )

