"""Out-of-distribution score from the denoiser itself: how unlike the training dermoscopy a photo is.

A diffusion model has learnt what its training images look like. Two read-outs of the forward
pass the Analyzer already makes (the lesion-label pass at the sample timesteps) say how far a
new photo lies from them, at no extra network cost:

* the decoder's feature statistics: per channel, the spatial mean and standard deviation of the
  gathered probe features, averaged over the samples, scored by a Mahalanobis distance in the
  leading principal components of the training photos' statistics (Lee et al. 2018, "A simple
  unified framework for detecting out-of-distribution samples"), plus the share of the vector
  those components do not explain (the reconstruction residual, as in PCA novelty detection);
* the denoising error: the mean squared error between the predicted and the true noise at each
  timestep (the per-step term of the diffusion loss, Ho et al. 2020 eq. 14), as a log-ratio to
  the training photos' mean at that step. Both too hard (texture the model never saw) and too
  easy (a blurred, featureless photo) are unusual, so it enters squared.

The fitted numbers live in the ``ood`` section of config.json (:class:`OODParams`); the cut-off
is a high percentile of the score on the calibration half of `val`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

OOD_MESSAGE = "photo unlike the dermoscopy images the model was trained on"


def denoising_error(eps: torch.Tensor, noise: torch.Tensor) -> np.ndarray:
    """(n,3,H,W) predicted noise and the (n,3,H,W) noise actually added -> (n,) float64 mean
    squared error per sample."""
    return (eps.float().cpu() - noise.float().cpu()).pow(2).mean(dim=(1, 2, 3)).double().numpy()


def feature_moments(features: torch.Tensor) -> np.ndarray:
    """(n,C,h,w) gathered features -> (2C,) float64: each channel's spatial mean, then its spatial
    standard deviation, both averaged over the n samples."""
    f = features.float()
    mean = f.mean(dim=(2, 3))
    std = f.std(dim=(2, 3), unbiased=False)
    return torch.cat([mean, std], dim=1).mean(dim=0).double().cpu().numpy()


@dataclasses.dataclass(frozen=True)
class OODParams:
    """The fitted score. center/scale: (2C,) standardisation of the feature moments; components:
    (k, 2C) principal axes (unit rows) of the standardised training moments, variances: their
    (k,) variances; residual_scale: the training photos' mean squared residual outside the
    components; error_timesteps / error_log_mean / error_log_std: per timestep, the training
    photos' mean and spread of log denoising error; cutoff: the score above which a photo is
    flagged."""

    center: tuple[float, ...]
    scale: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]
    variances: tuple[float, ...]
    residual_scale: float
    error_timesteps: tuple[int, ...]
    error_log_mean: tuple[float, ...]
    error_log_std: tuple[float, ...]
    cutoff: float
    percentile: float = 97.5

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OODParams:
        p = cls(
            center=tuple(float(v) for v in d["center"]),
            scale=tuple(float(v) for v in d["scale"]),
            components=tuple(tuple(float(v) for v in row) for row in d["components"]),
            variances=tuple(float(v) for v in d["variances"]),
            residual_scale=float(d["residual_scale"]),
            error_timesteps=tuple(int(v) for v in d["error_timesteps"]),
            error_log_mean=tuple(float(v) for v in d["error_log_mean"]),
            error_log_std=tuple(float(v) for v in d["error_log_std"]),
            cutoff=float(d["cutoff"]),
            percentile=float(d.get("percentile", 97.5)),
        )
        p.check()
        return p

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["components"] = [list(row) for row in self.components]
        for key in ("center", "scale", "variances", "error_timesteps", "error_log_mean", "error_log_std"):
            d[key] = list(d[key])
        return d

    def check(self) -> None:
        """Raise ValueError unless every number is finite and the shapes agree."""
        width = len(self.center)
        flat = [*self.center, *self.scale, *self.variances, *self.error_log_mean, *self.error_log_std,
                self.residual_scale, self.cutoff, self.percentile]
        flat += [v for row in self.components for v in row]
        if not all(math.isfinite(v) for v in flat):
            raise ValueError("the ood section holds a number that is not finite")
        if len(self.scale) != width or any(len(row) != width for row in self.components):
            raise ValueError("the ood section's feature widths disagree")
        if len(self.variances) != len(self.components) or min(self.variances, default=1.0) <= 0:
            raise ValueError("the ood section needs one positive variance per component")
        if not (len(self.error_timesteps) == len(self.error_log_mean) == len(self.error_log_std)):
            raise ValueError("the ood section's per-timestep lists differ in length")
        if min(self.scale, default=1.0) <= 0 or min(self.error_log_std, default=1.0) <= 0 or self.residual_scale <= 0:
            raise ValueError("the ood section's scales must be positive")


def error_term(params: OODParams, timesteps, errors: np.ndarray) -> float:
    """Mean squared z-score of log denoising error over the timesteps the model has statistics
    for (nearest fitted step); 0 when there are none."""
    if not params.error_timesteps:
        return 0.0
    known = np.asarray(params.error_timesteps)
    z = []
    for t, e in zip(timesteps, errors):
        j = int(np.argmin(np.abs(known - int(t))))
        z.append((math.log(max(float(e), 1e-12)) - params.error_log_mean[j]) / params.error_log_std[j])
    return float(np.mean(np.square(z)))


def feature_terms(params: OODParams, moments: np.ndarray) -> tuple[float, float]:
    """(Mahalanobis distance squared in the components / k, residual / its training mean)."""
    z = (moments - np.asarray(params.center)) / np.asarray(params.scale)
    components = np.asarray(params.components)
    coords = components @ z
    mahalanobis = float(np.mean(coords ** 2 / np.asarray(params.variances)))
    residual = float(np.mean((z - components.T @ coords) ** 2)) / params.residual_scale
    return mahalanobis, residual


def score(params: OODParams, moments: np.ndarray, timesteps, errors: np.ndarray) -> float:
    """The out-of-distribution score: the sum of the three terms, each about 1 on training
    photos. moments: (2C,) from :func:`feature_moments`; errors: (n,) from
    :func:`denoising_error` at ``timesteps``."""
    mahalanobis, residual = feature_terms(params, moments)
    return mahalanobis + residual + error_term(params, timesteps, errors)
