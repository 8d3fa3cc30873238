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


#: Longest side of what the overlays draw. A photo's full resolution (50 MP) is kept for export
#: and the editor, but drawing it whole froze the GUI for 2 s; a screen shows ~2,000 px anyway.
DISPLAY_MAX_SIDE = 2048


def display_shape(height: int, width: int, max_side: int = DISPLAY_MAX_SIDE) -> tuple[int, int]:
    """(h, w) of the display copy of an HxW image: the same when it fits, else scaled down."""
    scale = min(1.0, max_side / max(height, width, 1))
    return max(1, round(height * scale)), max(1, round(width * scale))


def nearest_indices(full: int, display: int) -> np.ndarray:
    """For each display row (or column), the full-resolution row under its centre."""
    return np.minimum(((np.arange(display) + 0.5) * (full / display)).astype(np.intp), full - 1)


def downsample_nearest(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``array`` (HxW or HxWxC) at ``shape``, picking the pixel under each display pixel's
    centre: reads only the pixels it keeps, so a 50 MP mask costs a few ms."""
    h, w = array.shape[:2]
    if (h, w) == tuple(shape):
        return array
    rows, cols = nearest_indices(h, shape[0]), nearest_indices(w, shape[1])
    return array[rows][:, cols]


def downsample_area(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``array`` at ``shape``, averaged over each display pixel's footprint (photos, maps)."""
    if array.shape[:2] == tuple(shape):
        return array
    if array.dtype == bool:
        array = array.view(np.uint8)
    return cv2.resize(array, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


@dataclasses.dataclass(frozen=True)
class DisplayData:
    """Overlay material for one analysis at display resolution, prepared off the GUI thread.

    The contours are in full-resolution image coordinates; the heatmap covers the whole photo.
    """

    variance_u8: np.ndarray  # hxw uint8 (display size), variance scaled 0..0.25 -> 0..255
    sample_contours: list[list[Contour]]  # one list of polylines per sample mask
    shape: tuple[int, int] = (0, 0)  # (H, W) of the analysis, full resolution


def prepare_display(analysis: Analysis) -> DisplayData:
    """Heatmap and sample outlines at display resolution (:data:`DISPLAY_MAX_SIDE`)."""
    h, w = analysis.variance.shape
    dh, dw = display_shape(h, w)
    scale = np.array([w / dw, h / dh], np.float32)
    variance = downsample_area(np.asarray(analysis.variance, np.float32), (dh, dw))
    contours = [[c * scale for c in mask_contours(downsample_nearest(m, (dh, dw)))]
                for m in analysis.sample_masks]
    return DisplayData(variance_u8=variance_levels(variance), sample_contours=contours,
                       shape=(h, w))
