"""DiffSeg (arXiv 2404.16474): a lesion map from the difference between the noise a
class-conditional denoiser predicts under the lesion label and under the healthy-skin label.

For one step t and one noise draw eps: x_t = q_sample(x_0, t, eps) (Ho et al. eq. 4), then
    D_t(p) = sum_c |eps_theta(x_t, t, lesion)_c(p) - eps_theta(x_t, t, healthy)_c(p)|.
Where the image looks like lesion, the two labels disagree about the noise. D_t is smoothed,
scaled by its 99th percentile over the field of view, and thresholded at theta (or by Otsu).
The difference lights the lesion's rim more than a large lesion's interior (shared/findings),
so the thresholded mask has its holes filled; the dermoscope's dark vignette is masked out.

Because the analysis knows the noise eps it added, it can also ask which label *explains* each
pixel better, the per-pixel denoising-error difference (the evidence a diffusion classifier
uses, Li et al. 2023, "Your diffusion model is secretly a zero-shot classifier"):
    E_t(p) = ||eps_theta(x_t, t, healthy)(p) - eps(p)||^2 - ||eps_theta(x_t, t, lesion)(p) - eps(p)||^2,
positive where the lesion label predicts the noise better. It is signed, so it marks the
lesion's region rather than its rim; `val` decides which statistic a model ships with.
"""

from __future__ import annotations

import dataclasses
import enum

import cv2
import numpy as np
import torch

SOFTNESS = 0.1  # width of the sigmoid that turns the scaled difference into a probability


class Statistic(str, enum.Enum):
    ABS_DIFFERENCE = "abs_difference"  # D_t, as published (scaled to 0..1)
    ERROR_DIFFERENCE = "error_difference"  # E_t, signed (scaled to -1..1)


@dataclasses.dataclass(frozen=True)
class DiffSegParams:
    smoothing_sigma: float = 2.0  # in working-resolution pixels
    threshold: float | None = None  # on the scaled statistic; None = Otsu per map
    fill_holes: bool = True
    mask_vignette: bool = True
    statistic: Statistic = Statistic.ABS_DIFFERENCE
    # Rim -> region (shared/findings: the difference lights a lesion's rim, not its inside):
    fov_margin: int = 0  # pixels of the field of view's edge ignored (its vignette ring lights up)
    closing: int = 0  # diameter of a morphological closing that joins a broken rim
    largest_only: bool = False  # keep the largest connected region only
    hull: bool = False  # replace the region by its convex hull

    def __post_init__(self) -> None:  # accept the config's string form too
        object.__setattr__(self, "statistic", Statistic(self.statistic))

    @classmethod
    def from_dict(cls, d: dict) -> DiffSegParams:
        known = {f.name for f in dataclasses.fields(cls)}
        params = {k: v for k, v in d.items() if k in known}
        if "statistic" in params:
            params["statistic"] = Statistic(params["statistic"])
        return cls(**params)

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), statistic=self.statistic.value)


def noise_difference(eps_lesion: torch.Tensor, eps_healthy: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) each -> (B,H,W) float32: per-pixel L1 over RGB of the two predictions."""
    return (eps_lesion - eps_healthy).abs().sum(dim=1).float().cpu().numpy()


def error_difference(eps_lesion: torch.Tensor, eps_healthy: torch.Tensor, noise: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) each -> (B,H,W) float32 E_t: healthy-label minus lesion-label squared error."""
    noise = noise.to(eps_lesion.device, eps_lesion.dtype)
    healthy_error = (eps_healthy - noise).pow(2).sum(dim=1)
    lesion_error = (eps_lesion - noise).pow(2).sum(dim=1)
    return (healthy_error - lesion_error).float().cpu().numpy()


def field_of_view(rgb: np.ndarray) -> np.ndarray:
    """HxW bool: False on the dark dermoscope vignette (dark pixels connected to the border)."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    dark = (grey < 35).astype(np.uint8)
    n, labels = cv2.connectedComponents(dark, connectivity=8)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    vignette = np.isin(labels, border[border > 0])
    return ~vignette


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """HxW bool with every background region not connected to the border filled."""
    background = (~mask).astype(np.uint8)
    n, labels = cv2.connectedComponents(background, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0]) & (background > 0)
    return ~outside


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of values in 0..1 (256 bins)."""
    hist, edges = np.histogram(np.clip(values, 0, 1), bins=256, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between))])


def scaled_difference(difference: np.ndarray, params: DiffSegParams, valid: np.ndarray | None) -> np.ndarray:
    """HxW raw statistic -> HxW float32, smoothed and divided by the 99th percentile of its
    magnitude in view: 0..1 for ABS_DIFFERENCE, -1..1 for ERROR_DIFFERENCE (out of view: the
    minimum)."""
    d = difference.astype(np.float32)
    if params.smoothing_sigma > 0:
        d = cv2.GaussianBlur(d, (0, 0), params.smoothing_sigma)
    inside = d[valid] if valid is not None and valid.any() else d.ravel()
    signed = params.statistic is Statistic.ERROR_DIFFERENCE
    scale = float(np.percentile(np.abs(inside) if signed else inside, 99)) or 1.0
    d = np.clip(d / scale, -1 if signed else 0, 1)
    if valid is not None:
        d[~valid] = -1.0 if signed else 0.0
    return d


def difference_probability(difference: np.ndarray, params: DiffSegParams, valid: np.ndarray | None) -> np.ndarray:
    """HxW raw statistic (D_t or E_t) -> HxW float32 lesion probability in 0..1.

    p = sigmoid((D_scaled - theta) / SOFTNESS), so p >= 0.5 exactly where D_scaled >= theta;
    then :func:`rim_to_region` shapes that mask, raising pixels it adds to at least
    0.5 + SOFTNESS and lowering pixels it drops to at most 0.5 - SOFTNESS.
    """
    if valid is not None and params.fov_margin > 0:
        valid = cv2.erode(valid.astype(np.uint8), _disk(2 * params.fov_margin + 1)) > 0
    d = scaled_difference(difference, params, valid)
    inside = d[valid] if valid is not None and valid.any() else d
    if params.threshold is not None:
        theta = params.threshold
    elif params.statistic is Statistic.ERROR_DIFFERENCE:
        theta = otsu_threshold((inside + 1) / 2) * 2 - 1
    else:
        theta = otsu_threshold(inside)
    p = 1.0 / (1.0 + np.exp(-(d - theta) / SOFTNESS))
    above = p >= 0.5
    region = rim_to_region(above, params)
    p = np.where(region & ~above, np.maximum(p, 0.5 + SOFTNESS), p)
    p = np.where(above & ~region, np.minimum(p, 0.5 - SOFTNESS), p)
    return p.astype(np.float32)


def _disk(diameter: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


def largest_region(mask: np.ndarray) -> np.ndarray:
    """HxW bool: the largest 8-connected region of ``mask`` (empty stays empty)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """HxW bool: the convex hull of every True pixel."""
    points = cv2.findNonZero(mask.astype(np.uint8))
    out = np.zeros(mask.shape, np.uint8)
    if points is not None:
        cv2.fillPoly(out, [cv2.convexHull(points)], 1)
    return out > 0


def rim_to_region(mask: np.ndarray, params: DiffSegParams) -> np.ndarray:
    """A thresholded difference map (HxW bool) -> the lesion region, per the params' steps in
    order: closing, largest region, convex hull, hole filling."""
    region = mask
    if params.closing > 1:
        region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, _disk(params.closing)) > 0
    if params.largest_only or params.hull:
        region = largest_region(region)
    if params.hull:
        region = convex_hull(region)
    if params.fill_holes:
        region = fill_holes(region)
    return region
