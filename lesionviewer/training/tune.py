"""Choosing the settings shipped in config.json on `val`: DiffSeg's smoothing and threshold,
the DenseCRF parameters, the fusion weight and the default method.

DiffSeg is tuned on stored noise differences with the engine's own functions, so what is
chosen here is exactly what the Analyzer computes. CRF and method choices run the Analyzer
itself end to end on a subset of `val`.
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
from tqdm import tqdm

from lesionviewer.engine.analysis import AnalysisSettings, Method
from lesionviewer.engine.diffseg import DiffSegParams, Statistic, difference_probability, field_of_view
from lesionviewer.engine.pipeline import Analyzer
from lesionviewer.training.probe_fit import mean_dice

SIGMAS = (2.0, 4.0)
THRESHOLDS = {
    Statistic.ABS_DIFFERENCE: (None, 0.2, 0.3, 0.4),
    Statistic.ERROR_DIFFERENCE: (None, 0.0, 0.1, 0.2),
}
SHAPES = (  # rim -> region steps (engine.diffseg.rim_to_region), at the working resolution
    {"fov_margin": 0, "closing": 0, "largest_only": False, "hull": False},
    {"fov_margin": 4, "closing": 0, "largest_only": True, "hull": False},
    {"fov_margin": 4, "closing": 7, "largest_only": True, "hull": False},
    {"fov_margin": 4, "closing": 0, "largest_only": True, "hull": True},
)


def tune_diffseg(differences: dict[Statistic, np.ndarray], images: np.ndarray,
                 masks: np.ndarray) -> tuple[DiffSegParams, list[dict]]:
    """differences: statistic -> (T, N, S, S); images: (N, S, S, 3) uint8; masks: (N, S, S) bool.

    Scores the consensus of the T thresholded maps (no CRF) by mean Dice."""
    fov = [field_of_view(img) for img in images]
    sweep = []
    for statistic, maps in differences.items():
        for sigma, theta, shape in itertools.product(SIGMAS, THRESHOLDS[statistic], SHAPES):
            params = DiffSegParams(smoothing_sigma=sigma, threshold=theta, statistic=statistic, **shape)
            votes = np.zeros(masks.shape, np.float32)
            for t in range(maps.shape[0]):
                for i in range(maps.shape[1]):
                    votes[i] += difference_probability(maps[t, i], params, fov[i]) >= 0.5
            dice = mean_dice(votes / maps.shape[0] >= 0.5, masks)
            sweep.append({"statistic": statistic.value, "smoothing_sigma": sigma, "threshold": theta, **shape,
                          "val_dice_no_crf": round(dice, 4)})
    best = dict(max(sweep, key=lambda r: r["val_dice_no_crf"]))
    best.pop("val_dice_no_crf")
    return DiffSegParams.from_dict(best), sweep


def _score(analyzer: Analyzer, settings: AnalysisSettings, images, masks) -> tuple[float, float]:
    """(mean Dice, seconds per image) of full analyses against (N, H, W) bool references."""
    dices, started = [], time.perf_counter()
    for image, mask in zip(images, masks):
        result = analyzer.analyze(image, settings, seed=0)
        dices.append(mean_dice(result.consensus_mask[None], mask[None]))
    return float(np.mean(dices)), (time.perf_counter() - started) / max(1, len(images))


CRF_GRID = (
    {"bilateral_srgb": 13.0, "bilateral_sxy": 30.0, "bilateral_compat": 5.0},
    {"bilateral_srgb": 8.0, "bilateral_sxy": 30.0, "bilateral_compat": 5.0},
    {"bilateral_srgb": 20.0, "bilateral_sxy": 50.0, "bilateral_compat": 5.0},
    {"bilateral_srgb": 13.0, "bilateral_sxy": 30.0, "bilateral_compat": 10.0},
    {"bilateral_srgb": 13.0, "bilateral_sxy": 60.0, "bilateral_compat": 3.0},
)


def tune_crf_and_method(analyzer: Analyzer, images: list[np.ndarray], masks: list[np.ndarray],
                        fusion_weights=(0.5, 0.75, 1.0)) -> tuple[dict, list[dict]]:
    """Pick CRF parameters (on the probe, or DiffSeg when there is none), then the default
    method and fusion weight, by mean Dice of the Analyzer on these val images."""
    model = analyzer.model
    sweep: list[dict] = []
    base = Method.PROBE if model.probe is not None else Method.DIFFSEG
    no_crf, secs = _score(analyzer, AnalysisSettings(method=base, crf=False), images, masks)
    sweep.append({"stage": "crf", "method": base.value, "crf": None, "val_dice": round(no_crf, 4),
                  "seconds_per_image": round(secs, 3)})
    best_crf, best_dice = None, no_crf
    for grid in tqdm(CRF_GRID, desc="tune CRF", dynamic_ncols=True):
        model.crf = dataclasses.replace(model.crf, **grid)
        dice, secs = _score(analyzer, AnalysisSettings(method=base, crf=True), images, masks)
        sweep.append({"stage": "crf", "method": base.value, "crf": grid, "val_dice": round(dice, 4),
                      "seconds_per_image": round(secs, 3)})
        if dice > best_dice:
            best_crf, best_dice = grid, dice
    use_crf = best_crf is not None
    model.crf = dataclasses.replace(model.crf, **(best_crf or CRF_GRID[0]))
    candidates = [(Method.DIFFSEG, None)]
    if model.probe is not None:
        candidates += [(Method.FUSED, w) for w in fusion_weights if w < 1.0] + [(Method.PROBE, None)]
    best = {"method": base.value, "fusion_weight": model.config.get("fusion_weight", 0.5), "val_dice": -1.0}
    for method, weight in tqdm(candidates, desc="tune method", dynamic_ncols=True):
        if weight is not None:
            model.config["fusion_weight"] = weight
        dice, secs = _score(analyzer, AnalysisSettings(method=method, crf=use_crf), images, masks)
        row = {"stage": "method", "method": method.value, "fusion_weight": weight, "crf": use_crf,
               "val_dice": round(dice, 4), "seconds_per_image": round(secs, 3)}
        sweep.append(row)
        if dice > best["val_dice"]:
            best = {"method": method.value, "fusion_weight": weight if weight is not None else best["fusion_weight"],
                    "val_dice": dice}
    model.config["fusion_weight"] = best["fusion_weight"]
    chosen = {"crf": dataclasses.asdict(model.crf), "use_crf": use_crf, **best}
    return chosen, sweep

