"""Plain data records exchanged with the engine: settings in, progress out, one result out.

Nothing here imports torch, so the GUI and the file formats can use these types cheaply.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

import numpy as np


class Method(str, enum.Enum):
    """How the per-sample masks are made."""

    DIFFSEG = "diffseg"  # noise difference between lesion and healthy labels (DiffSeg)
    PROBE = "probe"  # pixel-MLP ensemble on decoder features (FEDD)
    FUSED = "fused"  # weighted mean of the two probabilities, per sample


class AnalysisCancelled(Exception):
    """Raised by :meth:`Analyzer.analyze` when its cancel check answers True between steps."""


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
    """What a user may change about one analysis. ``None`` fields take the model's defaults.

    samples: number of timesteps (= sample masks), spread evenly over ``timestep_range``.
    timestep_range: inclusive (first, last) diffusion step, e.g. (60, 150).
    crf: refine every sample with DenseCRF.
    method: see :class:`Method`.
    threshold: consensus probability at or above which a pixel is lesion (0..1).
    device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps".
    """

    samples: int | None = None
    timestep_range: tuple[int, int] | None = None
    crf: bool | None = None
    method: Method | None = None
    threshold: float | None = None
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["method"] = self.method.value if self.method else None
        d["timestep_range"] = list(self.timestep_range) if self.timestep_range else None
        return d


@dataclasses.dataclass(frozen=True)
class Progress:
    """One step of an analysis, as reported to the progress callback."""

    step: int  # steps done so far, 0..total
    total: int
    stage: str  # human-readable, e.g. "denoiser forward pass", "DenseCRF 2/4"
    elapsed_s: float

    @property
    def remaining_s(self) -> float | None:
        if self.step <= 0:
            return None
        return self.elapsed_s / self.step * (self.total - self.step)


@dataclasses.dataclass(frozen=True)
class SkinTone:
    """Individual typology angle of the non-lesion skin (Chardon et al. 1991) and its group."""

    ita_degrees: float  # arctan((L* - 50) / b*) in degrees; NaN when no skin pixel was usable
    group: str  # "very light", "light", "intermediate", "tan", "brown", "dark" or "unknown"
    skin_pixels: int  # how many pixels the estimate rests on


@dataclasses.dataclass
class Analysis:
    """The result of analysing one image. All maps are at the input's full resolution (HxW).

    consensus_probability: HxW float32 in 0..1: the mean of the samples' soft DenseCRF marginals
        (continuous), or, for models without an "uncertainty" config section, the share of
        sample masks that vote lesion (N + 1 levels).
    consensus_mask: HxW bool, consensus_probability >= settings.threshold.
    variance: HxW float32 in 0..0.25, per-pixel variance of the lesion label under the samples:
        the predictive variance p(1 - p) of the unrefined soft samples (0.25 where the refinement
        overrode their majority), or the variance of the binary votes for older models.
    entropy: HxW float32 in 0..1 (bits), binary entropy of consensus_probability.
    sample_masks: NxHxW bool, one mask per sample (timestep), refined unless the model's design
        takes them before refinement (engine.pipeline.SamplingDesign).
    timesteps: the N diffusion steps used, in sample order.
    ged: Generalized Energy Distance among the samples (mean pairwise 1 - IoU), 0..1.
    malignancy_probability: calibrated probability in 0..1, or None when the model has no head.
    region: (x, y, w, h) in full-resolution pixels that was analysed, or None for the whole image.
    timings: seconds per stage, plus "total".
    malignancy_range: (low, high) interval around malignancy_probability, both in 0..1, or None
        when the model has no head.
    ood_score: how unlike the training dermoscopy the photo is (higher = more unusual), or None
        when the model has no fitted out-of-distribution score.
    ood: ood_score above the model's fitted cut-off; None when there is no score or cut-off.
    malignancy_withheld: one-line reason the malignancy figure must not be read (e.g. "photo
        unlike the dermoscopy images the model was trained on"), or None when it may be shown.
    ged_level: "low", "medium" or "high" (the mask's uncertainty, not the diagnosis), or None.
    """

    consensus_probability: np.ndarray
    consensus_mask: np.ndarray
    variance: np.ndarray
    entropy: np.ndarray
    sample_masks: np.ndarray
    timesteps: tuple[int, ...]
    ged: float
    malignancy_probability: float | None
    skin_tone: SkinTone
    model_id: str
    device: str
    settings: dict[str, Any]
    timings: dict[str, float]
    region: tuple[int, int, int, int] | None = None
    seed: int = 0
    malignancy_range: tuple[float, float] | None = None
    ood_score: float | None = None
    ood: bool | None = None
    malignancy_withheld: str | None = None
    ged_level: str | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready scalars (no maps)."""
        return {
            "model_id": self.model_id,
            "device": self.device,
            "ged": float(self.ged),
            "malignancy_probability": None
            if self.malignancy_probability is None
            else float(self.malignancy_probability),
            "malignancy_range": None
            if self.malignancy_range is None
            else [float(v) for v in self.malignancy_range],
            "malignancy_withheld": self.malignancy_withheld,
            "ood_score": _finite_or_none(self.ood_score),
            "ood": None if self.ood is None else bool(self.ood),
            "ged_level": self.ged_level,
            # NaN (no usable skin) is not JSON (RFC 8259): it becomes null.
            "skin_tone": {**dataclasses.asdict(self.skin_tone),
                          "ita_degrees": self.skin_tone.ita_degrees if math.isfinite(self.skin_tone.ita_degrees) else None},
            "lesion_fraction": float(self.consensus_mask.mean()),
            "timesteps": list(self.timesteps),
            "settings": self.settings,
            "seed": self.seed,
            "region": list(self.region) if self.region else None,
            "seconds": dict(self.timings),
        }

    def report(self) -> dict[str, Any]:
        """:meth:`summary` as written into files a person reads (analyze's JSON, exports): a
        withheld malignancy figure is not there at all, only the reason, so no file shows a
        number the app refuses to show. Evaluation and the cache keep :meth:`summary`."""
        out = self.summary()
        if self.malignancy_withheld:
            out["malignancy_probability"] = None
            out["malignancy_range"] = None
        return out


def _finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity (RFC 8259): those become null."""
    return None if value is None or not math.isfinite(value) else float(value)
