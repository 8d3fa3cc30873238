"""Fitting the trust layer: Platt scaling and the conformal range of the malignancy figure, the
GED cut-off above which it is withheld, and the out-of-distribution score and cut-off.

Pure numpy on read-outs already extracted (:mod:`lesionviewer.training.trust_features`), so each
fit is exact and testable. Everything is fitted on the *calibration* half of `val` (the OOD
statistics on a sample of `train`); nothing here looks at the reporting half.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lesionviewer.engine import ood
from lesionviewer.engine.malignancy import MalignancyCalibration

ISIC_FAILED_IOU = 0.65  # ISIC 2018 Task 1: a mask with IoU below this counts as failed


def fit_platt(logits: np.ndarray, labels: np.ndarray, l2: float = 1e-3, steps: int = 100) -> tuple[float, float]:
    """(a, b) minimising the log loss of sigmoid(a * logit + b) (Newton's method with a
    backtracking line search, a small ridge so separable data stays finite). logits: (n,)
    float; labels: (n,) 0/1."""
    x = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)

    def loss(w):
        z = design @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w)

    w = np.array([0.0, 0.0])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -40, 40)))
        grad = design.T @ (p - y) + l2 * w
        hess = (design * (p * (1 - p))[:, None]).T @ design + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        size, current = 1.0, loss(w)
        while loss(w - size * step) > current and size > 1e-6:
            size /= 2
        w = w - size * step
        if np.max(np.abs(size * step)) < 1e-10:
            break
    return float(w[0]), float(w[1])


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile: the ceil((n + 1) * coverage)-th smallest score (Lei et al.
    2018), so a new exchangeable case's score is at most it with probability >= coverage; the
    largest score when n is too small for that."""
    s = np.sort(np.asarray(scores, np.float64))
    k = min(len(s), math.ceil((len(s) + 1) * coverage))
    return float(s[k - 1])


def interval_scores(logits: np.ndarray, alternatives: np.ndarray, floor: float) -> np.ndarray:
    """Nonconformity of each case: the largest |alternative - shipped| mean logit, over the
    alternative views, in units of (per-sample logit spread + floor).

    logits: (n, T) per-sample logits of the shipped view; alternatives: (n, A) mean logits of
    the same cases under other views (a mirrored photo, the expert's outline).
    """
    centre = logits.mean(axis=1)
    spread = logits.std(axis=1) + floor
    return np.max(np.abs(alternatives - centre[:, None]), axis=1) / spread


def fit_malignancy(logits: np.ndarray, alternatives: np.ndarray, labels: np.ndarray, *,
                   coverage: float = 0.9, ged_cutoff: float | None = None) -> MalignancyCalibration:
    """Platt scaling on the mean logit, and the conformal range. logits: (n, T); alternatives:
    (n, A); labels: (n,) 0/1, for the calibration-half cases with a known diagnosis."""
    slope, intercept = fit_platt(logits.mean(axis=1), labels)
    floor = float(np.median(logits.std(axis=1)))
    q = conformal_quantile(interval_scores(logits, alternatives, floor), coverage)
    return MalignancyCalibration(slope=slope, intercept=intercept, interval_quantile=q, spread_floor=floor,
                                 coverage=coverage, ged_cutoff=ged_cutoff)


def interval_coverage(cal: MalignancyCalibration, logits: np.ndarray, alternatives: np.ndarray) -> float:
    """Share of cases whose every alternative figure lies inside the shipped range."""
    return float(np.mean(interval_scores(logits, alternatives, cal.spread_floor) <= cal.interval_quantile))


def fit_ged_cutoff(ged: np.ndarray, iou: np.ndarray, min_failed_share: float = 0.5) -> float | None:
    """The GED cut-off above which the malignancy figure is withheld: the smallest one at which
    at least ``min_failed_share`` of the masks above it failed (IoU < 0.65, the ISIC criterion),
    so a withheld figure means its mask more likely failed than not. (Youden's J withheld 37 %
    of `val`'s calibration half, most of them good masks.) None when no mask failed or no
    cut-off reaches the share."""
    ged, failed = np.asarray(ged, np.float64), np.asarray(iou) < ISIC_FAILED_IOU
    if not failed.any():
        return None
    for cut in np.unique(ged):
        above = ged > cut
        if above.any() and failed[above].mean() >= min_failed_share:
            return float(cut)
    return None


def fit_term(statistic: str, train: np.ndarray, components: int) -> ood.GaussianTerm:
    """A Gaussian on (n, d) training vectors: standardise, keep ``components`` principal axes,
    and normalise by the term's median on the same vectors."""
    x = np.asarray(train, np.float64)
    center = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), 1e-6)
    z = (x - center) / scale
    _, sing, vt = np.linalg.svd(z, full_matrices=False)
    k = max(1, min(components, len(sing), z.shape[1]))
    axes = vt[:k]
    variances = np.maximum(sing[:k] ** 2 / max(len(z) - 1, 1), 1e-9)
    residual = np.mean((z - (z @ axes.T) @ axes) ** 2, axis=1).mean() if k < z.shape[1] else 1.0
    term = ood.GaussianTerm(statistic, _short(center), _short(scale), tuple(_short(row) for row in axes),
                            _short(variances), _short([max(residual, 1e-12)])[0], 1.0)
    norm = float(np.median([term.term(v) for v in x]))
    return dataclasses.replace(term, norm=_short([max(norm, 1e-12)])[0])


def _short(values) -> tuple[float, ...]:
    """Seven significant digits (float32's precision): config.json stays a few hundred kB."""
    return tuple(float(f"{float(v):.7g}") for v in values)


def fit_ood(train: dict[str, np.ndarray], timesteps, calibration: dict[str, np.ndarray], *,
            components: dict[str, int] | int = 16, percentile: float = 97.5) -> ood.OODParams:
    """The out-of-distribution score from training photos' statistics (name -> (n, d), see
    engine.ood.STATISTICS) and its cut-off: the ``percentile`` of the score on the calibration
    half's statistics (so about 100 - percentile % of in-distribution photos are flagged)."""
    terms = []
    for name in ood.STATISTICS:
        if name in train and train[name] is not None:
            k = components.get(name, 16) if isinstance(components, dict) else components
            terms.append(fit_term(name, train[name], k))
    params = ood.OODParams(tuple(terms), tuple(int(t) for t in timesteps), 0.0, percentile)
    scores = ood_scores(params, calibration, timesteps)
    return dataclasses.replace(params, cutoff=float(np.percentile(scores, percentile)))


def ood_scores(params: ood.OODParams, statistics: dict[str, np.ndarray], timesteps) -> np.ndarray:
    """The engine's score for each photo; statistics: name -> (n, d)."""
    n = len(next(iter(statistics.values())))
    return np.array([ood.score(params, {k: v[i] for k, v in statistics.items()}, timesteps) for i in range(n)])


def stack_statistics(readouts) -> dict[str, np.ndarray]:
    """name -> (n, d) from engine.trust.Readout objects (a statistic missing anywhere is left out)."""
    out = {}
    for name in ood.STATISTICS:
        values = [r.statistics()[name] for r in readouts]
        if values and all(v is not None for v in values):
            out[name] = np.stack(values)
    return out
