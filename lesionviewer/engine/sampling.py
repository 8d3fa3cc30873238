"""How an analysis's samples are made to differ (views, probe members) and how its small maps
are brought to the photo's full size. Used by :mod:`lesionviewer.engine.pipeline`.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch


@dataclasses.dataclass(frozen=True)
class SamplingDesign:
    """How the samples are made to differ and how they are summarised: the model config's
    ``uncertainty`` section (absent: the "votes" design of models saved before it existed).

    views: flipped views of the photo cycled over the samples (1 = none; 2 adds the 180-degree
        rotation; 4 adds the horizontal and vertical flips; up to the 8 symmetries of a square).
    member_per_sample: sample i reads probe ensemble member i mod K instead of the mean.
    soft: summarise soft probabilities (a continuous consensus; the predictive variance of the
        unrefined samples as the heatmap) instead of CRF-refined votes.
    crf_samples: with ``soft``, refine every sample with DenseCRF (consensus = mean of their
        marginals; sample masks and GED after refinement) instead of one DenseCRF on the soft mean
        (sample masks and GED before refinement). On `val`'s calibration half GED after
        refinement ranked bad masks better (Spearman 0.68 against 0.58), at one DenseCRF per sample.
    ged_cutoffs: (low/medium, medium/high) GED cut-offs fitted on the calibration half of
        `val`, or None when the model has none (ged_level is then None).
    """

    views: int = 1
    member_per_sample: bool = False
    soft: bool = False
    crf_samples: bool = False
    ged_cutoffs: tuple[float, float] | None = None

    @classmethod
    def from_config(cls, config: dict) -> SamplingDesign:
        section = config.get("uncertainty") or {}
        trust = config.get("trust") or {}
        cutoffs = None
        if "ged_low" in trust and "ged_high" in trust:
            cutoffs = (float(trust["ged_low"]), float(trust["ged_high"]))
        if not section:
            return cls(ged_cutoffs=cutoffs)
        return cls(views=int(section.get("views", 1)), member_per_sample=bool(section.get("member_per_sample", False)),
                   soft=bool(section.get("soft", False)), crf_samples=bool(section.get("crf_samples", False)),
                   ged_cutoffs=cutoffs)


def view(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 symmetries of a square on the last two axes: 0 identity, 1 rotation by 180
    degrees, 2 horizontal flip, 3 vertical flip, 4 transpose, 5 and 6 rotations by 90 and 270
    degrees, 7 anti-transpose. Ordered so the first 2 or 4 are the cheapest useful sets."""
    k %= 8
    if k == 0:
        return x
    if k == 1:
        return x.flip(-1, -2)
    if k == 2:
        return x.flip(-1)
    if k == 3:
        return x.flip(-2)
    if k == 4:
        return x.transpose(-1, -2)
    if k == 5:
        return torch.rot90(x, 1, (-2, -1))
    if k == 6:
        return torch.rot90(x, -1, (-2, -1))
    return x.transpose(-1, -2).flip(-1, -2)


def unview(x: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of :func:`view` (rotations by 90 and 270 degrees swap; the rest undo themselves)."""
    return view(x, {5: 6, 6: 5}.get(k % 8, k % 8))


def full_map(small: np.ndarray, box: tuple[int, int, int, int], full_hw: tuple[int, int]) -> np.ndarray:
    """A map at the CRF resolution of the crop ``box`` (x, y, w, h) -> full-sized HxW float32,
    resampled linearly (smooth at any zoom), zero outside the crop."""
    x, y, w, h = box
    crop = small if small.shape == (h, w) else cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if (h, w) == full_hw:
        return np.ascontiguousarray(crop, dtype=np.float32)
    return paste(crop, full_hw, (x, y))


def full_masks(small: np.ndarray, box: tuple[int, int, int, int], full_hw: tuple[int, int]) -> np.ndarray:
    """NxHxW bool masks at the CRF resolution -> N x full size, each resampled linearly as 0/255
    bytes (smooth edges at a quarter of float's memory), False outside the crop ``box``."""
    x, y, w, h = box
    if small.shape[1:] == full_hw:
        return small
    out = np.zeros((len(small), *full_hw), bool)
    for i, mask in enumerate(small):
        resized = cv2.resize(mask.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR)
        np.greater_equal(resized, 128, out=out[i, y:y + h, x:x + w])
    return out


def paste(crop_map: np.ndarray, full_hw: tuple[int, int], offset: tuple[int, int]) -> np.ndarray:
    """A crop-sized float32 map placed in a zero full-sized one at (x, y)."""
    out = np.zeros(full_hw, np.float32)
    x, y = offset
    out[y:y + crop_map.shape[0], x:x + crop_map.shape[1]] = crop_map
    return out
