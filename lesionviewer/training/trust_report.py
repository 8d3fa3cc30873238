"""Evaluation report sections for the trust layer: the malignancy figure and the OOD warning.

Measured on the *reporting* half of `val` (every case, on any other split: nothing there was
fitted on), beside trivial baselines, from the lead method's analyses that ``evaluate``
already made; plus a few extra passes (the mirrored photo, for the range's coverage; the
out-of-distribution photos).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from lesionviewer.training import metrics
from lesionviewer.training.report import ReportSection
from lesionviewer.training.val_halves import CALIBRATION, REPORTING

OOD_COMPOSITES = 100  # phone-style composites of reporting-half photos in the OOD set (20 per kind)
TARGETS = {"malignancy_auroc": 0.85, "malignancy_ece": 0.05, "ood_auroc": 0.95}


def _config(context) -> dict:
    """The evaluated model's config ({} for an analyzer without one, e.g. a test double)."""
    return getattr(getattr(context.analyzer, "model", None), "config", None) or {}


def _reported(context) -> list:
    if context.split == "val":
        return [r for r in context.results if r.half == REPORTING]
    return list(context.results)


def _figures(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    both = 0 < y.sum() < len(y)
    return {"n": int(len(y)), "positives": int(y.sum()),
            "auroc": metrics.auroc(p, y) if both else None,
            "ece": metrics.expected_calibration_error(p, y, bins=10) if len(y) else None,
            "sens_at_90spec": metrics.sensitivity_at_specificity(p, y, 0.9) if both else None}


def _size_baseline(context, reported: list) -> np.ndarray | None:
    """Lesion size alone: Platt scaling of log lesion fraction, fitted on the calibration half."""
    from lesionviewer.training.trust_fit import fit_platt

    fit_rows = [r for r in context.results if r.half == CALIBRATION and r.case.malignant is not None]
    if not fit_rows or context.split != "val":
        return None
    x = np.log([max(r.summary["lesion_fraction"], 1e-4) for r in fit_rows])
    a, b = fit_platt(x, np.array([r.case.malignant for r in fit_rows]))
    z = a * np.log([max(r.summary["lesion_fraction"], 1e-4) for r in reported]) + b
    return 1 / (1 + np.exp(-z))


def _range_coverage(context, rows: list) -> float | None:
    """Share of cases whose figures for the same lesion seen two other ways (the photo mirrored,
    the expert's outline) both lie inside the range shipped for the photo."""
    from lesionviewer.engine import trust
    from lesionviewer.io.images import load_image, load_mask
    from lesionviewer.training.trust_calibrate import case_readout

    calibration = trust.calibration_of(_config(context))
    if calibration is None or not rows:
        return None
    inside = []
    for r in rows:
        photo = load_image(r.case.image_path).rgb
        reference = load_mask(r.case.mask_path, shape=photo.shape[:2])
        _, _, alternatives = case_readout(context.analyzer, photo, reference, seed=context.args.seed)
        p = 1 / (1 + np.exp(-(calibration.slope * alternatives + calibration.intercept)))
        lo, hi = r.summary["malignancy_range"]
        inside.append(bool(np.all((lo - 1e-9 <= p) & (p <= hi + 1e-9))))
    return float(np.mean(inside))


def malignancy_section(context) -> ReportSection | None:
    """AUROC, ECE and sensitivity at 90 % specificity of the malignancy figure, beside the prior
    and lesion-size baselines; the range's width and coverage; how often it is withheld."""
    reported = [r for r in _reported(context) if r.summary.get("malignancy_probability") is not None]
    labelled = [r for r in reported if r.case.malignant is not None]
    if not labelled:
        return None
    y = np.array([r.case.malignant for r in labelled], bool)
    p = np.array([r.summary["malignancy_probability"] for r in labelled])
    shown = np.array([r.summary.get("malignancy_withheld") is None for r in labelled])
    ranges = np.array([r.summary.get("malignancy_range") or [np.nan, np.nan] for r in labelled], float)
    rows: dict[str, dict[str, Any]] = {}
    model = _figures(p, y)
    widths = ranges[:, 1] - ranges[:, 0]
    # no range at all (a model without a calibrated range): None, not NaN with a warning
    model["range_width"] = float(np.nanmean(widths)) if np.isfinite(widths).any() else None
    model["range_coverage"] = _range_coverage(context, labelled)
    model["withheld"] = float(1 - shown.mean())
    rows["model, every case"] = model
    rows["model, figure shown"] = _figures(p[shown], y[shown])
    if (~shown).any():
        rows["model, figure withheld"] = _figures(p[~shown], y[~shown])
    prior = [r.case.malignant for r in context.results if r.half == CALIBRATION and r.case.malignant is not None]
    rate = float(np.mean(prior)) if prior and context.split == "val" else float(y.mean())
    rows["baseline: prior rate"] = _figures(np.full(len(y), rate), y)
    size = _size_baseline(context, labelled)
    if size is not None:
        rows["baseline: lesion size only"] = _figures(size, y)
    half = "reporting half of val" if context.split == "val" else f"split {context.split or 'all'}"
    notes = [
        f"Measured on the {half} (cases with a known diagnosis); every fit (Platt scaling, the range, "
        "the GED cut-off, the size baseline, the prior) used the calibration half only.",
        "ECE: 10 equal-width bins. Sensitivity at the highest threshold keeping specificity >= 90 %.",
        "range_coverage: share of cases whose figures for the same lesion seen two other ways (the photo "
        "mirrored; pooled under the expert's outline) both lie inside the range shipped for the photo "
        "(nominal: the model's malignancy_calibration.coverage, a split-conformal guarantee).",
        "withheld: share of cases whose figure is replaced by a reason (mask GED above the fitted "
        "cut-off, or an out-of-distribution photo).",
        f"Targets: AUROC >= {TARGETS['malignancy_auroc']}, ECE <= {TARGETS['malignancy_ece']}.",
    ]
    columns = [("n", "Cases"), ("positives", "Malignant"), ("auroc", "AUROC"), ("ece", "ECE"),
               ("sens_at_90spec", "Sens. @ 90 % spec."), ("range_width", "Mean range width"),
               ("range_coverage", "Range coverage"), ("withheld", "Withheld")]
    return ReportSection("malignancy", "Malignancy figure (calibrated, with a range)", columns, rows, notes)


def ood_photos(context, reported: list) -> list[tuple[str, str, np.ndarray]]:
    """(kind, name, photo): scikit-image's bundled photos and phone-style composites of the
    first OOD_COMPOSITES reported photos."""
    from lesionviewer.io.images import load_image
    from lesionviewer.training.ood_sets import composites, skimage_photos

    out: list[tuple[str, str, np.ndarray]] = []
    try:
        out += [("scikit-image photo", name, photo) for name, photo in skimage_photos()]
    except ImportError:
        print("trust report: scikit-image is not installed (pip install -e .[dev]); OOD set without it",
              file=sys.stderr)
    chosen = reported[:OOD_COMPOSITES]
    images, kinds = composites([load_image(r.case.image_path).rgb for r in chosen], seed=context.args.seed)
    out += [(f"composite: {k}", r.case.id, im) for r, k, im in zip(chosen, kinds, images)]
    return out


def ood_section(context) -> ReportSection | None:
    """AUROC of the OOD score, reporting-half dermoscopy against photos the model never saw, and
    the share flagged at the fitted cut-off (false alarms on the dermoscopy)."""
    reported = [r for r in _reported(context) if r.summary.get("ood_score") is not None]
    if not reported:
        return None
    inside = np.array([r.summary["ood_score"] for r in reported])
    rows: dict[str, dict[str, Any]] = {
        "dermoscopy (in distribution)": {"n": len(inside), "flagged": float(np.mean([r.summary["ood"] for r in reported]))}
    }
    by_kind: dict[str, list[float]] = {}
    flagged: dict[str, list[bool]] = {}
    shown_when_flagged = 0
    for kind, _, photo in ood_photos(context, reported):
        a = context.analyzer.analyze(photo, seed=context.args.seed)
        by_kind.setdefault(kind, []).append(a.ood_score)
        flagged.setdefault(kind, []).append(bool(a.ood))
        shown_when_flagged += int(bool(a.ood) and a.malignancy_probability is not None and a.malignancy_withheld is None)
    outside_all = []
    for kind, scores in by_kind.items():
        s = np.array(scores)
        outside_all.append(s)
        rows[kind] = {"n": len(s), "flagged": float(np.mean(flagged[kind])), "auroc": _auroc(inside, s)}
    if outside_all:
        s = np.concatenate(outside_all)
        rows["all unlike photos"] = {"n": len(s), "flagged": float(np.mean(s > _cutoff(context))),
                                     "auroc": _auroc(inside, s)}
    notes = [
        "Score: from the denoiser's own forward pass, three Gaussian terms fitted on `train` photos "
        "(Mahalanobis distance in the leading principal components plus the residual, each divided by "
        "its training median): the decoder features' moments over the photo, the same features inside "
        "the consensus outline, and the log noise-prediction error per step (lesionviewer.engine.ood); "
        "cut-off: a percentile of the calibration half's scores (config.json, ood.percentile).",
        "AUROC: dermoscopy of the reporting half against each set of unlike photos; flagged: share "
        "above the cut-off (for the dermoscopy row: false alarms).",
        f"Flagged unlike photos still showing a malignancy figure: {shown_when_flagged} (must be 0).",
        f"Target: AUROC >= {TARGETS['ood_auroc']}.",
    ]
    columns = [("n", "Photos"), ("flagged", "Flagged"), ("auroc", "AUROC vs dermoscopy")]
    return ReportSection("ood", "Out-of-distribution warning", columns, rows, notes)


def _cutoff(context) -> float:
    from lesionviewer.engine import trust

    params = trust.ood_params_of(_config(context))
    return float("inf") if params is None else params.cutoff


def _auroc(inside: np.ndarray, outside: np.ndarray) -> float | None:
    scores = np.concatenate([inside, outside])
    labels = np.concatenate([np.zeros(len(inside), bool), np.ones(len(outside), bool)])
    return metrics.auroc(scores, labels) if len(inside) and len(outside) else None


def card_lines(config: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    """Model-card lines for the trust layer: how it was fitted (the command) and its figures
    from the evaluation's ``malignancy`` and ``ood`` sections. Empty when nothing was fitted."""
    record = config.get("trust_training")
    cal, params = config.get("malignancy_calibration"), config.get("ood")
    if not record and not cal and not params:
        return []
    out = ["## Trust layer: malignancy range, withheld figures, out-of-distribution warning", "", "```bash",
           (record or {}).get("command", "# calibrate command not recorded"), "```", ""]
    if cal:
        cutoff = cal.get("ged_cutoff")
        out += [f"- Malignancy: Platt scaling sigmoid({cal['slope']:.3f} x logit {cal['intercept']:+.3f}) on the mean "
                f"per-sample head logit, fitted on the calibration half of `val` "
                f"({(record or {}).get('calibration_labelled', '?')} cases with a diagnosis). Range: split-conformal, "
                f"nominal coverage {cal['coverage']:.0%} of the figure the model gives the same lesion mirrored or "
                f"pooled under the expert's outline (logit +- {cal['interval_quantile']:.2f} x (sample spread + "
                f"{cal['spread_floor']:.3f})).",
                "- The figure is withheld (the reason shown instead) for an out-of-distribution photo"
                + (f" and when the mask's GED is above {cutoff:.3f} (the smallest at which at least half the masks "
                   "above it failed, IoU < 0.65, on the calibration half)." if cutoff is not None else ".")]
    if params:
        terms = ", ".join(f"{t['statistic']} ({len(t['components'])} components)" for t in params.get("terms", []))
        out += [f"- Out-of-distribution score: the sum of Gaussian terms on the denoiser's read-outs ({terms}), "
                f"each fitted on {(record or {}).get('train_photos', '?')} `train` photos (Mahalanobis distance in the "
                f"principal components plus the residual, divided by its training median); flagged above "
                f"{params['cutoff']:.3f}, the {params['percentile']}th percentile of the calibration half's scores."]
    for section in evaluation.get("sections", []):
        if section.get("key") in ("malignancy", "ood"):
            from lesionviewer.training.report import section_markdown

            lines = section_markdown(section)[1:]
            out += ["#" + lines[0], *lines[1:]]
    return out + [""]
