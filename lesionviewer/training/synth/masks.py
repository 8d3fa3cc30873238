"""Varied masks for synthesis: affine and elastic deformations of real lesion masks.

Elastic deformation after Simard et al. 2003 (a random displacement field, Gaussian-smoothed,
scaled); affine: rotation, anisotropic scale, shear and shift about the lesion's centre. The
warped mask is resampled linearly and thresholded at 0.5, so it stays binary with smooth edges.
A deformation whose area leaves ``min_area``..``max_area`` times the original (or that pushes
the lesion off the frame) is drawn again; after ``tries`` failures the original is returned.
"""

from __future__ import annotations

import enum

import cv2
import numpy as np


class Deformation(str, enum.Enum):
    NONE = "none"
    AFFINE = "affine"
    ELASTIC = "elastic"
    BOTH = "both"  # affine, then elastic


def affine(mask: np.ndarray, rng: np.random.Generator, max_rotation: float = 45.0,
           scale: tuple[float, float] = (0.8, 1.2), max_shear: float = 0.15, max_shift: float = 0.1) -> np.ndarray:
    """mask: HxW bool -> HxW bool, warped about the lesion's centre of mass."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    cx, cy = (xs.mean(), ys.mean()) if len(xs) else (w / 2, h / 2)
    angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation))
    sx, sy = rng.uniform(*scale, size=2)
    shear = rng.uniform(-max_shear, max_shear)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    shift = rng.uniform(-max_shift, max_shift, size=2) * (w, h)
    centre = np.array([cx, cy])
    matrix = np.hstack([linear, (centre + shift - linear @ centre)[:, None]])
    warped = cv2.warpAffine(mask.astype(np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped >= 0.5


def elastic(mask: np.ndarray, rng: np.random.Generator, alpha: float = 0.08, sigma: float = 0.06) -> np.ndarray:
    """mask: HxW bool -> HxW bool; displacements up to about ``alpha`` x the side, smooth over
    ``sigma`` x the side (Simard et al. 2003)."""
    h, w = mask.shape
    side = max(h, w)
    ksigma = max(1.0, sigma * side)

    def field() -> np.ndarray:
        noise = rng.uniform(-1, 1, size=(h, w)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), ksigma)
        return smooth / (np.abs(smooth).max() + 1e-8) * alpha * side

    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    warped = cv2.remap(mask.astype(np.float32), gx + field(), gy + field(), interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped >= 0.5


def deform(mask: np.ndarray, rng: np.random.Generator, kind: Deformation | str = Deformation.BOTH,
           min_area: float = 0.5, max_area: float = 2.0, tries: int = 5) -> np.ndarray:
    """A deformed copy of ``mask`` (HxW bool) whose lesion area stays within min_area..max_area
    times the original's and does not touch more of the frame's border than the original."""
    kind = Deformation(kind)
    if kind is Deformation.NONE or not mask.any():
        return mask.copy()
    area = mask.sum()
    border = _border_pixels(mask)
    for _ in range(tries):
        out = mask
        if kind in (Deformation.AFFINE, Deformation.BOTH):
            out = affine(out, rng)
        if kind in (Deformation.ELASTIC, Deformation.BOTH):
            out = elastic(out, rng)
        if min_area * area <= out.sum() <= max_area * area and _border_pixels(out) <= max(border, 0.02 * sum(mask.shape)):
            return out
    return mask.copy()


def _border_pixels(mask: np.ndarray) -> int:
    return int(mask[0].sum() + mask[-1].sum() + mask[:, 0].sum() + mask[:, -1].sum())
