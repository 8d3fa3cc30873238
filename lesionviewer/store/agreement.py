"""How several raters' masks of one case agree, and their consensus.

Pairwise Dice for each pair of raters; GED among raters, i.e. the mean pairwise 1 - IoU
(:func:`lesionviewer.engine.uncertainty.ged` without a reference, the measure the model's
uncertainty uses among its samples, so the two read on one scale); and a majority-vote
consensus (a pixel is lesion where at least half the raters marked it).

STAPLE (Warfield et al. 2004) would weight raters by their estimated sensitivity and
specificity, but no maintained library for it is installed here (SimpleITK, which has one,
is a ~50 MB dependency not otherwise needed); with the two or three raters a case typically
has, STAPLE's per-rater estimates rest on little data anyway. So: majority vote.
"""

from __future__ import annotations

import itertools

import numpy as np

from lesionviewer.engine.uncertainty import ged, iou
from lesionviewer.store.records import Agreement, MaskVersion

METHOD = "majority vote"


def dice_from_iou(value: float) -> float:
    """Dice = 2 IoU / (1 + IoU) (1.0 for two empty masks, as IoU)."""
    return 2.0 * value / (1.0 + value)


def raters_ged(masks: list[np.ndarray]) -> float:
    """Mean pairwise 1 - IoU among HxW bool masks (0..1; 0 for fewer than two)."""
    return float(ged(np.stack([np.asarray(m, dtype=bool) for m in masks])))


def majority_vote(masks: list[np.ndarray]) -> np.ndarray:
    """HxW bool: pixels marked by at least half of the masks (mean vote >= 0.5)."""
    votes = np.stack([np.asarray(m, dtype=bool) for m in masks]).sum(axis=0)
    return 2 * votes >= len(masks)


def agreement(latest: dict[str, MaskVersion]) -> Agreement | None:
    """Agreement among each rater's newest mask ({author: version}); None with fewer than two
    raters. Raises ValueError when their masks differ in size."""
    if len(latest) < 2:
        return None
    raters = sorted(latest)
    masks = [latest[r].mask for r in raters]
    if len({m.shape for m in masks}) != 1:
        raise ValueError("the raters' masks differ in size")
    pairwise = {(a, b): float(dice_from_iou(iou(latest[a].mask, latest[b].mask)))
                for a, b in itertools.combinations(raters, 2)}
    return Agreement(raters=raters, pairwise_dice=pairwise, ged=raters_ged(masks),
                     consensus=majority_vote(masks), method=METHOD)
