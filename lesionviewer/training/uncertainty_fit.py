"""`lesionviewer train uncertainty`: the sampling design and the GED cut-offs of a trained model.

Writes the model config's ``uncertainty`` section (how the samples differ: flipped views, one
probe member per sample, soft summaries; see engine.pipeline.SamplingDesign), the default
number of samples and timestep range, and the ``trust`` section: GED cut-offs between "low",
"medium" and "high", fitted on the *calibration* half of `val` only (training.val_halves) as
quantiles of the GED the Analyzer itself reports. The high cut-off is the 90th percentile, so a
"high" GED marks the top 10 % of the review queue; the low one the median. The mean Dice of each
level on the calibration half is recorded beside the cut-offs, so the card can say what a
level means; every figure a card quotes is measured on the reporting half by `evaluate`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lesionviewer.engine.checkpoint import read_config, save_model
from lesionviewer.engine.model import load_model
from lesionviewer.engine.pipeline import Analyzer
from lesionviewer.engine.uncertainty import GED_LEVELS, ged_level
from lesionviewer.training.cases import read_cases
from lesionviewer.training.common import hardware_description, seed_everything
from lesionviewer.training.data import read_mask, read_rgb
from lesionviewer.training.metrics import dice
from lesionviewer.training.uncertainty_eval import spearman, worst_in_top_share
from lesionviewer.training.val_halves import split_val

REPORT_FILE = "uncertainty_report.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model folder (rewritten in place unless --out)")
    p.add_argument("--data", required=True, help="folder in the shared data format, with splits.csv")
    p.add_argument("--out", help="model folder to write (default: --model)")
    p.add_argument("--samples", type=int, default=4, help="default number of samples")
    p.add_argument("--timestep-range", type=int, nargs=2, default=[60, 150], metavar=("FIRST", "LAST"))
    p.add_argument("--views", type=int, default=1, choices=[1, 2, 4, 8], help="flipped views cycled over samples")
    p.add_argument("--member-per-sample", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--soft", action=argparse.BooleanOptionalAction, default=True,
                   help="continuous consensus; variance from the unrefined soft samples")
    p.add_argument("--crf-samples", action=argparse.BooleanOptionalAction, default=True,
                   help="DenseCRF on every sample (GED after refinement) rather than once on the soft mean")
    p.add_argument("--low-quantile", type=float, default=0.5)
    p.add_argument("--high-quantile", type=float, default=0.9)
    p.add_argument("--limit", type=int, help="first N calibration cases only (tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)


def design_section(args: argparse.Namespace) -> dict:
    return {"views": int(args.views), "member_per_sample": bool(args.member_per_sample), "soft": bool(args.soft),
            "crf_samples": bool(args.crf_samples)}


def fit_cutoffs(geds: np.ndarray, low_q: float, high_q: float) -> tuple[float, float]:
    """(low, high) GED cut-offs: the two quantiles of the calibration GEDs, rounded to 4 places."""
    low, high = np.quantile(np.asarray(geds, np.float64), [low_q, high_q])
    return round(float(low), 4), round(float(max(high, low)), 4)


def level_table(geds: np.ndarray, dices: np.ndarray, cutoffs: tuple[float, float]) -> dict[str, dict]:
    """Per GED level: number of cases and their mean Dice."""
    levels = np.array([ged_level(g, cutoffs) for g in geds])
    return {lvl: {"n": int((levels == lvl).sum()),
                  "dice_mean": round(float(dices[levels == lvl].mean()), 4) if (levels == lvl).any() else None}
            for lvl in GED_LEVELS}


def run(args: argparse.Namespace) -> int:
    started = time.time()
    seed_everything(args.seed, args.threads)
    model = load_model(args.model)
    model.config = dict(model.config, uncertainty=design_section(args),
                        defaults=dict(model.config["defaults"], samples=args.samples,
                                      timestep_range=list(args.timestep_range)))
    analyzer = Analyzer(model, device="cpu")
    calibration, _ = split_val(read_cases(args.data, split="val"), key=lambda c: c.id)
    calibration = calibration[: args.limit]
    geds, dices = [], []
    for case in tqdm(calibration, desc="calibration half", dynamic_ncols=True):
        result = analyzer.analyze(read_rgb(case.image_path), seed=args.seed)
        geds.append(result.ged)
        dices.append(dice(result.consensus_mask, read_mask(case.mask_path)))
    geds, dices = np.array(geds), np.array(dices)
    cutoffs = fit_cutoffs(geds, args.low_quantile, args.high_quantile)
    fit = {
        "cases": len(calibration),
        "low_quantile": args.low_quantile,
        "high_quantile": args.high_quantile,
        "dice_mean": round(float(dices.mean()), 4),
        "spearman_ged_1_minus_dice": round(spearman(geds, 1 - dices), 4),
        "worst10_in_top10_ged": round(worst_in_top_share(geds, dices), 4),
        "levels": level_table(geds, dices, cutoffs),
    }
    out = Path(args.out or args.model)
    # Re-read the config just before writing: other fits (malignancy calibration, OOD) write
    # their own sections into the same file; only this command's keys are replaced.
    config = read_config(args.model)
    config = {k: v for k, v in config.items() if k not in ("weights", "format", "format_version", "config_sha256")}
    config["uncertainty"] = design_section(args)
    config["defaults"] = dict(config["defaults"], samples=args.samples, timestep_range=list(args.timestep_range))
    config["trust"] = dict(config.get("trust") or {}, ged_low=cutoffs[0], ged_high=cutoffs[1])
    config["uncertainty_training"] = {
        "minutes": round((time.time() - started) / 60, 1),
        "hardware": hardware_description("cpu"),
        "seed": args.seed,
        "command": getattr(args, "command_line", "") or "lesionviewer train uncertainty (called from Python)",
        "calibration": fit,
    }
    digest = save_model(out, config, model.state_dict())
    (out / REPORT_FILE).write_text(json.dumps({"sha256": digest, "design": design_section(args),
                                               "ged_cutoffs": list(cutoffs), "calibration_half": fit}, indent=2) + "\n")
    print(f"GED cut-offs low < {cutoffs[0]} <= medium < {cutoffs[1]} <= high, fitted on {len(calibration)} "
          f"calibration cases (Spearman {fit['spearman_ged_1_minus_dice']}, Dice {fit['dice_mean']}); "
          f"saved to {out}", flush=True)
    return 0
