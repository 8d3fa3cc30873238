"""Does the uncertainty mark the errors? Figures with their trivial baselines beside them.

Per pixel: the AUROC of the variance heatmap at ranking the pixels where the consensus
disagrees with the expert mask above the others, beside the AUROC of the trivial map "distance
to the consensus boundary" (errors cluster at edges, so any map must beat that one clearly).

Per case: the Spearman correlation of GED (the samples' disagreement, what the app shows)
with 1 - Dice, beside trivial per-case scores (1 - lesion area fraction; boundary length over
area), and the share of the worst 10 % of cases by Dice that land in the top 10 % of the review
queue sorted by the score (a random queue: 10 %).

Everything is computed per half of `val` (lesionviewer.training.val_halves): cut-offs are
fitted on the calibration half, the figures that count are the reporting half's.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import cv2
import numpy as np

from lesionviewer.training import metrics

WORST_SHARE = 0.10


def boundary_distance(mask: np.ndarray) -> np.ndarray:
    """HxW float32 distance (pixels) of every pixel to the boundary of the HxW bool ``mask``:
    inside, to the nearest background pixel; outside, to the nearest mask pixel. An empty or
    full mask has no boundary: every pixel gets the image diagonal."""
    m = np.asarray(mask, dtype=np.uint8)
    if m.all() or not m.any():
        return np.full(m.shape, float(np.hypot(*m.shape)), np.float32)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
    return np.where(m > 0, inside, outside).astype(np.float32)


def boundary_score(mask: np.ndarray) -> np.ndarray:
    """The baseline map: 1 / (1 + distance to the consensus boundary), HxW float32 in 0..1."""
    return (1.0 / (1.0 + boundary_distance(mask))).astype(np.float32)


def boundary_per_area(mask: np.ndarray) -> float:
    """Outline length over area of the HxW bool mask (0 for an empty mask): high for small or
    ragged masks, a trivial per-case difficulty score."""
    m = np.asarray(mask, dtype=np.uint8)
    area = int(m.sum())
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return float(sum(cv2.arcLength(c, True) for c in contours)) / area


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN for fewer than 3 cases or a
    constant input."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 3:
        return float("nan")
    rx, ry = metrics._average_ranks(x), metrics._average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def worst_in_top_share(score: np.ndarray, dice: np.ndarray, share: float = WORST_SHARE) -> float:
    """Of the ceil(share * n) cases with the lowest Dice, the fraction that are among the
    ceil(share * n) cases with the highest ``score`` (ties: the lower index first). NaN for no case."""
    score, dice = np.asarray(score, np.float64), np.asarray(dice, np.float64)
    n = score.size
    if n == 0:
        return float("nan")
    k = max(1, math.ceil(share * n))
    worst = set(np.argsort(dice, kind="stable")[:k].tolist())
    top = set(np.argsort(-score, kind="stable")[:k].tolist())
    return len(worst & top) / k


@dataclasses.dataclass
class CaseUncertainty:
    """One case's per-case uncertainty figures (a row of the evaluation's ``per_image``)."""

    dice: float
    ged_samples: float  # Analysis.ged: how much the sample masks disagree (what the app shows)
    area_fraction: float  # consensus mask area / image area
    boundary_per_area: float


class UncertaintyTally:
    """Pooled pixel counts of the variance map and of the boundary-distance baseline against
    the consensus errors, plus the per-case rows, for one set of cases (a half of `val`)."""

    def __init__(self) -> None:
        self.variance = metrics.PooledAuroc(0.0, 0.25, 4096)
        self.boundary = metrics.PooledAuroc(0.0, 1.0, 8192)
        self.cases: list[CaseUncertainty] = []

    def add(self, consensus: np.ndarray, variance: np.ndarray, reference: np.ndarray,
            ged_samples: float) -> CaseUncertainty:
        """consensus, reference: HxW bool; variance: HxW float in 0..0.25; ged_samples: 0..1."""
        error = consensus != reference
        self.variance.add(variance, error)
        self.boundary.add(boundary_score(consensus), error)
        row = CaseUncertainty(metrics.dice(consensus, reference), float(ged_samples),
                              float(consensus.mean()), boundary_per_area(consensus))
        self.cases.append(row)
        return row

    def merge(self, other: UncertaintyTally) -> None:
        self.variance.merge(other.variance)
        self.boundary.merge(other.boundary)
        self.cases += other.cases

    def figures(self) -> dict[str, Any]:
        dice = np.array([c.dice for c in self.cases])
        bad = 1.0 - dice
        ged = np.array([c.ged_samples for c in self.cases])
        small = 1.0 - np.array([c.area_fraction for c in self.cases])
        ragged = np.array([c.boundary_per_area for c in self.cases])
        variance, boundary = self.variance.value(), self.boundary.value()
        return {
            "n": len(self.cases),
            "dice_mean": float(dice.mean()) if dice.size else float("nan"),
            "variance_error_auroc": variance,
            "boundary_distance_auroc": boundary,
            "variance_auroc_margin": variance - boundary,
            "spearman_ged_1_minus_dice": spearman(ged, bad),
            "spearman_1_minus_area": spearman(small, bad),
            "spearman_boundary_per_area": spearman(ragged, bad),
            "worst10_in_top10_ged": worst_in_top_share(ged, dice),
            "worst10_in_top10_boundary_per_area": worst_in_top_share(ragged, dice),
            "worst10_in_top10_random": WORST_SHARE,
        }


UNCERTAINTY_COLUMNS = [
    ("n", "n"),
    ("dice_mean", "Dice"),
    ("variance_error_auroc", "Variance→error AUROC"),
    ("boundary_distance_auroc", "Boundary-distance AUROC (baseline)"),
    ("variance_auroc_margin", "Margin"),
    ("spearman_ged_1_minus_dice", "Spearman(GED, 1−Dice)"),
    ("spearman_1_minus_area", "Spearman(1−area, 1−Dice) (baseline)"),
    ("spearman_boundary_per_area", "Spearman(outline/area, 1−Dice) (baseline)"),
    ("worst10_in_top10_ged", "Worst 10 % in GED top 10 %"),
    ("worst10_in_top10_boundary_per_area", "… by outline/area (baseline)"),
    ("worst10_in_top10_random", "… random queue"),
]


UNCERTAINTY_NOTES = [
    "Variance→error AUROC: pixels of every case pooled; positive = consensus differs from the "
    "expert mask. Baseline: the same AUROC for 1 / (1 + distance to the consensus boundary).",
    "GED here is the sample masks' disagreement the app shows (Analysis.ged, no reference). "
    "Baselines rank cases by 1 − lesion area fraction and by outline length / area.",
    "Worst 10 % in GED top 10 %: of the ceil(n/10) cases with the lowest Dice, the share among "
    "the ceil(n/10) cases with the highest GED (the top of the review queue); random = 0.10.",
    "Targets on the reporting half: AUROC ≥ 0.85 and ≥ baseline + 0.05; Spearman ≥ 0.75; "
    "worst-10 % share ≥ 0.75. The calibration half is where cut-offs were fitted.",
]


def uncertainty_section(context) -> "ReportSection | None":
    """The evaluation's uncertainty section from ``context.uncertainty`` (half -> tally)."""
    from lesionviewer.training.report import ReportSection

    tallies: dict[str, UncertaintyTally] = context.uncertainty
    if not tallies:
        return None
    rows = {}
    for half in ("calibration", "reporting"):
        if half in tallies and len(tallies) > 1:
            rows[f"{half} half"] = tallies[half].figures()
    everything = UncertaintyTally()
    for tally in tallies.values():
        everything.merge(tally)
    rows["all cases"] = everything.figures()
    return ReportSection("uncertainty", f"Does the uncertainty mark the errors? (method `{context.lead_method}`)",
                         UNCERTAINTY_COLUMNS, rows, UNCERTAINTY_NOTES)
