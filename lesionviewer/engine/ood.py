"""Out-of-distribution score from the denoiser itself: how unlike the training dermoscopy a photo is.

A diffusion model has learnt what its training images look like. Three read-outs of the forward
pass the Analyzer already makes (the lesion-label pass at the sample timesteps) say how far a new
photo lies from them, at no extra network cost:

* ``moments``: per channel of the gathered decoder features, the spatial mean and standard
  deviation, averaged over the samples (the whole photo's appearance to the model);
* ``lesion``: the same features' mean and spread inside the consensus outline, averaged over
  the samples (the malignancy head's input without the area: what the lesion looks like);
* ``log_errors``: the log mean squared error between predicted and true noise at each sample
  timestep (the per-step term of the diffusion loss, Ho et al. 2020 eq. 14): both too hard
  (texture never seen) and too easy (a blurred, featureless photo) are unusual.

Each statistic is scored by a Gaussian fitted on training photos: the Mahalanobis distance in its
leading principal components (Lee et al. 2018, "A simple unified framework for detecting
out-of-distribution samples") plus the residual outside them (PCA novelty detection), divided
by the term's median on the training photos, so the terms add on one scale. The cut-off is a high
percentile of the summed score on the calibration half of `val`. Everything fitted lives in the
``ood`` section of config.json (:class:`OODParams`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

OOD_MESSAGE = "photo unlike the dermoscopy images the model was trained on"
STATISTICS = ("moments", "lesion", "log_errors")


def denoising_error(eps: torch.Tensor, noise: torch.Tensor) -> np.ndarray:
    """(n,3,H,W) predicted noise and the (n,3,H,W) noise actually added -> (n,) float64 mean
    squared error per sample."""
    return (eps.float().cpu() - noise.float().cpu()).pow(2).mean(dim=(1, 2, 3)).double().numpy()


def feature_moments(features: torch.Tensor) -> np.ndarray:
    """(n,C,h,w) gathered features -> (2C,) float64: each channel's spatial mean, then its spatial
    standard deviation, both averaged over the n samples."""
    f = features.float().flatten(2)
    mean = f.mean(dim=2)
    # E[x^2] - E[x]^2: one pass, three times faster than Tensor.std here (same to 1e-7)
    std = ((f * f).mean(dim=2) - mean * mean).clamp_min(0).sqrt()
    return torch.cat([mean, std], dim=1).mean(dim=0).double().cpu().numpy()


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclasses.dataclass(frozen=True)
class GaussianTerm:
    """One statistic's Gaussian. center/scale: (d,) standardisation; components: (k, d) unit
    principal axes of the standardised training vectors; variances: (k,) their variances;
    residual_scale: the mean squared residual outside them on training photos (1 when k = d);
    norm: the term's median on training photos."""

    statistic: str
    center: tuple[float, ...]
    scale: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]
    variances: tuple[float, ...]
    residual_scale: float
    norm: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GaussianTerm:
        return cls(str(d["statistic"]), _floats(d["center"]), _floats(d["scale"]),
                   tuple(_floats(row) for row in d["components"]), _floats(d["variances"]),
                   float(d["residual_scale"]), float(d["norm"]))

    def to_dict(self) -> dict[str, Any]:
        return {"statistic": self.statistic, "center": list(self.center), "scale": list(self.scale),
                "components": [list(row) for row in self.components], "variances": list(self.variances),
                "residual_scale": self.residual_scale, "norm": self.norm}

    def check(self) -> None:
        width = len(self.center)
        flat = [*self.center, *self.scale, *self.variances, self.residual_scale, self.norm]
        flat += [v for row in self.components for v in row]
        if self.statistic not in STATISTICS:
            raise ValueError(f"the ood section names an unknown statistic {self.statistic!r}")
        if not all(math.isfinite(v) for v in flat):
            raise ValueError("the ood section holds a number that is not finite")
        if len(self.scale) != width or any(len(row) != width for row in self.components):
            raise ValueError("the ood section's feature widths disagree")
        if len(self.variances) != len(self.components) or min(self.variances, default=1.0) <= 0:
            raise ValueError("the ood section needs one positive variance per component")
        if min(self.scale, default=1.0) <= 0 or self.residual_scale <= 0 or self.norm <= 0:
            raise ValueError("the ood section's scales must be positive")

    def term(self, x: np.ndarray) -> float:
        """(Mahalanobis distance squared in the components / k + residual / its training mean)
        / norm; about 1 for a typical training photo."""
        z = (np.asarray(x, np.float64) - np.asarray(self.center)) / np.asarray(self.scale)
        components = np.asarray(self.components)
        coords = components @ z
        mahalanobis = float(np.mean(coords ** 2 / np.asarray(self.variances)))
        residual = float(np.mean((z - components.T @ coords) ** 2)) / self.residual_scale
        return (mahalanobis + residual) / self.norm


@dataclasses.dataclass(frozen=True)
class OODParams:
    """The ``ood`` section: the Gaussian terms, the timesteps ``log_errors`` was fitted at, the
    cut-off and the percentile of calibration-half scores it is."""

    terms: tuple[GaussianTerm, ...]
    timesteps: tuple[int, ...]
    cutoff: float
    percentile: float = 97.5

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OODParams:
        p = cls(tuple(GaussianTerm.from_dict(t) for t in d["terms"]), tuple(int(t) for t in d["timesteps"]),
                float(d["cutoff"]), float(d.get("percentile", 97.5)))
        p.check()
        return p

    def to_dict(self) -> dict[str, Any]:
        return {"terms": [t.to_dict() for t in self.terms], "timesteps": list(self.timesteps),
                "cutoff": self.cutoff, "percentile": self.percentile}

    def check(self) -> None:
        if not self.terms:
            raise ValueError("the ood section has no terms")
        for t in self.terms:
            t.check()
        if not (math.isfinite(self.cutoff) and math.isfinite(self.percentile)):
            raise ValueError("the ood section holds a number that is not finite")


def score(params: OODParams, statistics: dict[str, np.ndarray | None], timesteps) -> float:
    """The out-of-distribution score: the sum of the terms, each about 1 on training photos.
    statistics: name -> vector (see STATISTICS). A term whose statistic is missing, or
    ``log_errors`` at other timesteps than fitted, counts its typical value 1."""
    total = 0.0
    for t in params.terms:
        x = statistics.get(t.statistic)
        if x is None or len(x) != len(t.center) or (
                t.statistic == "log_errors" and tuple(int(v) for v in timesteps) != params.timesteps):
            total += 1.0
            continue
        total += t.term(x)
    return total
