"""What the Analyzer tells the user about how far to trust one analysis, from the samples it made:
the malignancy figure with its range (or the reason it is withheld) and the out-of-distribution
score and flag. Reads only what the one batched forward pass already produced.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from lesionviewer.engine import malignancy as M
from lesionviewer.engine import ood
from lesionviewer.engine.probe import MalignancyHead


class SampleLike(Protocol):
    probability: np.ndarray  # S x S float32 lesion probability of one sample
    features: torch.Tensor | None  # 1 x C x f x f probe features of that sample
    denoising_error: float | None  # mean squared noise-prediction error of that sample


@dataclasses.dataclass(frozen=True)
class Readout:
    """Per-analysis numbers the trust layer is computed (and fitted) from."""

    logits: np.ndarray | None  # (n,) malignancy head logit per sample; None without a head
    moments: np.ndarray | None  # (2C,) feature moments; None without probe features
    errors: np.ndarray | None  # (n,) denoising error per sample; None when not measured
    lesion: np.ndarray | None = None  # (2C,) mean and spread inside the outline, averaged over samples

    def statistics(self) -> dict[str, np.ndarray | None]:
        """The OOD score's statistics (engine.ood.STATISTICS)."""
        log_errors = None if self.errors is None else np.log(np.maximum(self.errors, 1e-12))
        return {"moments": self.moments, "lesion": self.lesion, "log_errors": log_errors}


@dataclasses.dataclass(frozen=True)
class Trust:
    malignancy_probability: float | None
    malignancy_range: tuple[float, float] | None
    malignancy_withheld: str | None
    ood_score: float | None
    ood: bool | None


_parsed: dict[int, tuple[Any, Any]] = {}  # id(section) -> (section kept alive, parsed), per loaded config


def _section(config: dict[str, Any], key: str, parse):
    section = config.get(key)
    if not section:
        return None
    hit = _parsed.get(id(section))
    if hit is not None and hit[0] is section:
        return hit[1]
    try:
        parsed = parse(section)
    except (KeyError, TypeError, ValueError):  # a damaged optional section disables its feature
        parsed = None
    if len(_parsed) > 64:
        _parsed.clear()
    _parsed[id(section)] = (section, parsed)
    return parsed


def calibration_of(config: dict[str, Any]) -> M.MalignancyCalibration | None:
    return _section(config, "malignancy_calibration", M.MalignancyCalibration.from_dict)


def ood_params_of(config: dict[str, Any]) -> ood.OODParams | None:
    return _section(config, "ood", ood.OODParams.from_dict)


def pooled_features(samples: Sequence[SampleLike], lesion_masks: Sequence[np.ndarray] | None = None) -> torch.Tensor:
    """(n, 2C+1) per sample: its features pooled (MalignancyHead.pool) under its own mask (its
    probability >= 0.5 at the feature grid), or under ``lesion_masks`` (HxW, 0..1) if given."""
    pooled = []
    for i, sample in enumerate(samples):
        f = sample.features
        source = sample.probability if lesion_masks is None else np.asarray(lesion_masks[i], np.float32)
        lesion = cv2.resize(source, f.shape[-2:][::-1], interpolation=cv2.INTER_AREA) >= 0.5
        pooled.append(MalignancyHead.pool(f, torch.from_numpy(lesion)[None].to(f.device)))
    return torch.cat(pooled)


def sample_logits(head: MalignancyHead, samples: Sequence[SampleLike],
                  lesion_masks: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """(n,) head logit per sample, pooled as :func:`pooled_features`."""
    return head.logit(pooled_features(samples, lesion_masks)).double().cpu().numpy()


def readout(head: MalignancyHead | None, samples: Sequence[SampleLike], lesion: np.ndarray | None = None) -> Readout:
    """lesion: HxW 0..1 map (any size, the photo's frame) to pool every sample's features under,
    e.g. the consensus; None: each sample's own mask."""
    have_features = bool(samples) and all(s.features is not None for s in samples)
    errors = [getattr(s, "denoising_error", None) for s in samples]
    errors = np.array(errors, np.float64) if errors and all(e is not None for e in errors) else None
    if not have_features:
        return Readout(None, None, errors)
    pooled = pooled_features(samples, None if lesion is None else [lesion] * len(samples))
    logits = None if head is None else head.logit(pooled).double().cpu().numpy()
    moments = ood.feature_moments(torch.cat([s.features for s in samples]))
    return Readout(logits, moments, errors, pooled[:, :-1].mean(dim=0).double().cpu().numpy())


def assess(config: dict[str, Any], head: MalignancyHead | None, samples: Sequence[SampleLike],
           timesteps: Sequence[int], ged: float, lesion: np.ndarray | None = None) -> Trust:
    """The trust fields of one analysis. ``config``: the model's config (its optional
    ``malignancy_calibration`` and ``ood`` sections); ``ged``: the analysis's GED; ``lesion``:
    the consensus (HxW, 0..1) the head pools every sample's features under: the outline the
    user sees, closer to the expert's than any one sample's (on `val` pooling under it ranked
    malignancy better than each sample's own mask)."""
    r = readout(head, samples, lesion)
    params = ood_params_of(config)
    score = flagged = None
    if params is not None and r.moments is not None:
        score = ood.score(params, r.statistics(), timesteps)
        flagged = bool(score > params.cutoff) if math.isfinite(score) else True
    if r.logits is None:
        return Trust(None, None, None, score, flagged)
    calibration = calibration_of(config)
    temperature = float(head.temperature) if head is not None else 1.0
    p, (lo, hi) = M.estimate(r.logits, calibration, temperature)
    return Trust(p, (lo, hi), M.withheld_reason(ged, flagged, calibration), score, flagged)
