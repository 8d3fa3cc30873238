"""A malignancy figure a clinician can read: calibrated, with a range, withheld when it means nothing.

The head gives one logit per sample mask (the lesion pooled under each sample's mask). Their mean
is mapped to a probability by Platt scaling, p = sigmoid(a * logit + b) (Platt 1999), fitted on
the *calibration* half of `val`: the head is trained class-balanced, which shifts its logits, and
a temperature alone (Guo et al. 2017) cannot remove a shift.

The range is a split-conformal interval (Vovk et al. 2005; Lei et al. 2018, normalised
residuals) for the figure the model would give the same lesion under another view: on the
calibration half, each case's largest distance in logit space between the shipped figure and the
figure under a mirrored photo or the expert's outline, divided by the spread of the per-sample
logits plus a floor, has its ``coverage`` quantile ``q``; a new case's range is
sigmoid(a * (logit +- q * (spread + floor)) + b). The coverage actually reached is measured on the
reporting half and stated in the model card.

The figure is withheld (the reason replaces it) when the photo is out of distribution, or when the
mask's GED is above the cut-off fitted on the calibration half: the head pools the lesion under
the mask, so a mask the samples disagree on gives a figure about some other region.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from lesionviewer.engine.ood import OOD_MESSAGE


@dataclasses.dataclass(frozen=True)
class MalignancyCalibration:
    """The ``malignancy_calibration`` section of config.json (every number finite)."""

    slope: float  # a in sigmoid(a * logit + b)
    intercept: float  # b
    interval_quantile: float  # q, in units of (spread + spread_floor), logit space
    spread_floor: float  # added to the per-sample logit standard deviation
    coverage: float  # nominal coverage the quantile was fitted for, e.g. 0.9
    ged_cutoff: float | None = None  # withhold the figure when the GED is above this

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MalignancyCalibration:
        cal = cls(slope=float(d["slope"]), intercept=float(d["intercept"]),
                  interval_quantile=float(d["interval_quantile"]), spread_floor=float(d["spread_floor"]),
                  coverage=float(d["coverage"]),
                  ged_cutoff=None if d.get("ged_cutoff") is None else float(d["ged_cutoff"]))
        cal.check()
        return cal

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check(self) -> None:
        numbers = [self.slope, self.intercept, self.interval_quantile, self.spread_floor, self.coverage]
        if self.ged_cutoff is not None:
            numbers.append(self.ged_cutoff)
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError("the malignancy_calibration section holds a number that is not finite")
        if self.slope <= 0 or self.interval_quantile < 0 or self.spread_floor < 0 or not 0 < self.coverage < 1:
            raise ValueError("malignancy_calibration: slope > 0, interval_quantile >= 0, spread_floor >= 0 "
                             "and 0 < coverage < 1")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def estimate(logits, calibration: MalignancyCalibration | None,
             temperature: float = 1.0) -> tuple[float, tuple[float, float]]:
    """Per-sample head logits (n,) -> (probability, (low, high)), all in 0..1, low <= p <= high.

    Without a calibration (older models) the probability is the mean of the temperature-scaled
    sample probabilities, as before, and the range is their smallest and largest.
    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    if z.size == 0 or not np.all(np.isfinite(z)):
        raise ValueError("the malignancy head gave no finite logit")
    if calibration is None:
        per_sample = [_sigmoid(v / temperature) for v in z]
        return float(np.mean(per_sample)), (float(min(per_sample)), float(max(per_sample)))
    c = calibration
    centre = float(z.mean())
    half = c.interval_quantile * (float(z.std()) + c.spread_floor)
    p = _sigmoid(c.slope * centre + c.intercept)
    return p, (_sigmoid(c.slope * (centre - half) + c.intercept), _sigmoid(c.slope * (centre + half) + c.intercept))


def withheld_reason(ged: float, ood: bool | None, calibration: MalignancyCalibration | None) -> str | None:
    """Why the figure must not be read, in one line for the panel; None when it may be."""
    if ood:
        return OOD_MESSAGE
    cutoff = None if calibration is None else calibration.ged_cutoff
    if cutoff is not None and math.isfinite(ged) and ged > cutoff:
        return f"mask uncertain (GED {ged:.2f} above {cutoff:.2f})"
    return None
