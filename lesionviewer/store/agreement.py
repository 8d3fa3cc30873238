"""How several raters' masks of one case agree, and their consensus.

Pairwise Dice for each pair of raters; GED among raters, i.e. the mean pairwise 1 - IoU
(what :func:`lesionviewer.engine.uncertainty.ged` gives without a reference, the measure the
model's uncertainty uses among its samples, so the two read on one scale); and a majority-vote
consensus (a pixel is lesion where at least half the raters marked it).

STAPLE (Warfield et al. 2004) would weight raters by their estimated sensitivity and
specificity, but no maintained library for it is installed here (SimpleITK, which has one,
is a ~50 MB dependency not otherwise needed); with the two or three raters a case typically
has, STAPLE's per-rater estimates rest on little data anyway. So: majority vote.
"""

from __future__ import annotations

import itertools

import numpy as np

from lesionviewer.store.records import Agreement, MaskVersion

METHOD = "majority vote"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two HxW bool masks, 1.0 when both are empty (as
    :func:`lesionviewer.engine.uncertainty.iou`, with one temporary array instead of four:
    a 50 MP pair in ~0.1 s)."""
    inter = np.count_nonzero(np.logical_and(a, b))
    union = np.count_nonzero(a) + np.count_nonzero(b) - inter
    return 1.0 if union == 0 else inter / union


def dice_from_iou(value: float) -> float:
    """Dice = 2 IoU / (1 + IoU) (1.0 for two empty masks, as IoU)."""
    return 2.0 * value / (1.0 + value)


def raters_ged(masks: list[np.ndarray]) -> float:
    """Mean pairwise 1 - IoU among HxW bool masks (0..1; 0 for fewer than two): the value of
    :func:`lesionviewer.engine.uncertainty.ged` without a reference, pair by pair, so a few
    50 MP masks need no NxHxW float copy."""
    pairs = list(itertools.combinations(masks, 2))
    if not pairs:
        return 0.0
    return float(np.mean([1.0 - iou(a, b) for a, b in pairs]))


def majority_vote(masks: list[np.ndarray]) -> np.ndarray:
    """HxW bool: pixels marked by at least half of the masks (mean vote >= 0.5)."""
    votes = np.zeros(np.shape(masks[0]), np.uint16)
    for mask in masks:
        votes += np.asarray(mask, dtype=bool)
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
    # each pair's IoU once, for its Dice and for the GED (the same pairs, in raters_ged's order):
    # at 12 MP a pair costs ~20 ms on a loaded 2-core machine
    ious = {(a, b): iou(latest[a].mask, latest[b].mask) for a, b in itertools.combinations(raters, 2)}
    pairwise = {pair: float(dice_from_iou(value)) for pair, value in ious.items()}
    ged = float(np.mean([1.0 - value for value in ious.values()]))
    return Agreement(raters=raters, pairwise_dice=pairwise, ged=ged,
                     consensus=majority_vote(masks), method=METHOD)
