"""The malignancy figure's calibration, range and withholding, and that the fit never sees the
reporting half of `val`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lesionviewer.engine import malignancy as M
from lesionviewer.engine.ood import OOD_MESSAGE
from lesionviewer.training import trust_fit as F
from lesionviewer.training.val_halves import REPORTING, val_half


def _logistic(n, a, b, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, n)
    y = rng.random(n) < 1 / (1 + np.exp(-(a * x + b)))
    return x, y.astype(int)


def test_platt_scaling_recovers_a_known_slope_and_shift():
    x, y = _logistic(20000, a=0.5, b=-1.5, seed=0)
    a, b = F.fit_platt(x, y)
    assert a == pytest.approx(0.5, abs=0.04) and b == pytest.approx(-1.5, abs=0.06)


def test_platt_scaling_removes_a_shift_that_a_temperature_cannot():
    """A class-balanced head over-calls malignancy: its logits are shifted. Platt fixes the ECE."""
    from lesionviewer.training.metrics import expected_calibration_error

    x, y = _logistic(4000, a=1.0, b=-2.0, seed=1)
    shifted = x  # the head's logit misses the -2 prior shift
    a, b = F.fit_platt(shifted[:2000], y[:2000])
    calibrated = 1 / (1 + np.exp(-(a * shifted[2000:] + b)))
    raw = 1 / (1 + np.exp(-shifted[2000:]))
    assert expected_calibration_error(calibrated, y[2000:].astype(bool), bins=10) < 0.03
    assert expected_calibration_error(raw, y[2000:].astype(bool), bins=10) > 0.15


def test_conformal_range_covers_new_cases_at_the_nominal_rate():
    rng = np.random.default_rng(2)

    def cases(n):
        spread = rng.uniform(0.1, 1.0, n)
        logits = rng.normal(0, 1, (n, 1)) + rng.normal(0, 1, (n, 4)) * spread[:, None]
        alternatives = logits.mean(1, keepdims=True) + rng.normal(0, 1, (n, 2)) * spread[:, None]
        return logits, alternatives

    logits, alternatives = cases(400)
    fitted = F.fit_malignancy(logits, alternatives, rng.integers(0, 2, 400), coverage=0.9)
    new_logits, new_alternatives = cases(4000)
    assert F.interval_coverage(fitted, new_logits, new_alternatives) == pytest.approx(0.9, abs=0.03)
    half = M.MalignancyCalibration(**{**fitted.to_dict(), "interval_quantile": fitted.interval_quantile / 2})
    assert F.interval_coverage(half, new_logits, new_alternatives) < 0.8


def test_estimate_gives_a_range_around_the_figure_that_widens_with_disagreement():
    cal = M.MalignancyCalibration(slope=0.8, intercept=-1.0, interval_quantile=2.0, spread_floor=0.2, coverage=0.9)
    p, (lo, hi) = M.estimate([0.5, 0.6, 0.4, 0.5], cal)
    assert 0 < lo < p < hi < 1
    assert p == pytest.approx(1 / (1 + np.exp(-(0.8 * 0.5 - 1.0))))
    _, (lo2, hi2) = M.estimate([-1.5, 2.5, 0.0, 1.0], cal)  # samples that disagree
    assert hi2 - lo2 > 2 * (hi - lo)


def test_estimate_without_a_calibration_keeps_the_old_figure_and_spans_the_samples():
    logits = np.array([0.0, 1.0, -1.0, 2.0])
    p, (lo, hi) = M.estimate(logits, None, temperature=2.0)
    per_sample = 1 / (1 + np.exp(-logits / 2.0))
    assert p == pytest.approx(per_sample.mean()) and (lo, hi) == pytest.approx((per_sample.min(), per_sample.max()))


def test_figure_is_withheld_for_an_ood_photo_or_an_uncertain_mask():
    cal = M.MalignancyCalibration(slope=1, intercept=0, interval_quantile=1, spread_floor=0.1, coverage=0.9,
                                  ged_cutoff=0.22)
    assert M.withheld_reason(0.05, True, cal) == OOD_MESSAGE
    assert M.withheld_reason(0.31, False, cal) == "mask uncertain (GED 0.31 above 0.22)"
    assert M.withheld_reason(0.10, False, cal) is None
    assert M.withheld_reason(0.90, None, None) is None  # an old model: nothing fitted, nothing withheld


def test_ged_cut_off_separates_failed_masks():
    rng = np.random.default_rng(3)
    iou = np.concatenate([rng.uniform(0.7, 0.95, 150), rng.uniform(0.1, 0.6, 30)])
    ged = np.concatenate([rng.uniform(0.0, 0.15, 150), rng.uniform(0.2, 0.5, 30)])
    cut = F.fit_ged_cutoff(ged, iou)
    withheld = ged > cut
    assert withheld[150:].all()  # every failed mask
    assert (iou[withheld] < 0.65).mean() >= 0.5  # a withheld figure: its mask more likely failed than not
    previous = np.max(ged[ged < cut])  # the next smaller cut-off does not reach half
    assert (iou[ged > previous] < 0.65).mean() < 0.5
    assert F.fit_ged_cutoff(ged, np.ones_like(iou)) is None


def test_calibration_section_round_trips_and_refuses_nonsense():
    cal = M.MalignancyCalibration(slope=0.8, intercept=-1.0, interval_quantile=2.0, spread_floor=0.2,
                                  coverage=0.9, ged_cutoff=0.3)
    assert M.MalignancyCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    with pytest.raises(ValueError):
        M.MalignancyCalibration.from_dict({**cal.to_dict(), "slope": float("inf")})
    with pytest.raises(ValueError):
        M.MalignancyCalibration.from_dict({**cal.to_dict(), "coverage": 1.5})


def test_fit_trust_reads_only_the_calibration_half(tmp_path, tiny_model_dir, enliven, monkeypatch):
    """Every val case `train calibrate` reads is from the calibration half."""
    import cv2

    from lesionviewer.engine.model import load_model
    from lesionviewer.engine.pipeline import Analyzer
    from lesionviewer.training import trust_calibrate

    ids = [f"ISIC_{i:07d}" for i in range(12)]
    rng = np.random.default_rng(0)
    rows = ["id,split"]
    labels = ["id,malignant"]
    for i, case in enumerate(ids):
        photo = np.clip(np.full((40, 40, 3), (200, 150, 130)) + rng.normal(0, 8, (40, 40, 3)), 0, 255).astype(np.uint8)
        cv2.circle(photo, (20, 20), 8 + i % 4, (90, 50, 40), -1)
        cv2.imwrite(str(tmp_path / f"{case}.jpg"), photo[..., ::-1])
        mask = np.zeros((40, 40), np.uint8)
        cv2.circle(mask, (20, 20), 8 + i % 4, 255, -1)
        cv2.imwrite(str(tmp_path / f"{case}_mask.png"), mask)
        rows.append(f"{case},{'train' if i < 4 else 'val'}")
        labels.append(f"{case},{i % 2}")
    (tmp_path / "splits.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "labels.csv").write_text("\n".join(labels) + "\n")
    model = load_model(tiny_model_dir)
    enliven(model)
    analyzer = Analyzer(model, device="cpu")
    seen = []
    original = analyzer.analyze
    monkeypatch.setattr(analyzer, "analyze", lambda photo, **kw: seen.append(photo.shape) or original(photo, **kw))
    read = []
    monkeypatch.setattr(trust_calibrate, "read_mask", lambda path: read.append(path.name) or cv2.imread(str(path), 0) > 127)
    sections = trust_calibrate.fit_trust(analyzer, tmp_path, train_photos=4, components=2)
    val_ids = ids[4:]
    assert read and all(val_half(name.removesuffix("_mask.png")) != REPORTING for name in read)
    assert len(read) == sum(val_half(c) != REPORTING for c in val_ids)
    assert np.isfinite(sections["ood"]["cutoff"])
    assert sections["trust_training"]["calibration_cases"] == len(read)


def test_the_analysis_carries_a_range_around_its_figure_and_withholds_it_when_the_mask_is_uncertain(
        tiny_model_dir, enliven):
    from lesionviewer.engine.analysis import AnalysisSettings, Method
    from lesionviewer.engine.model import load_model
    from lesionviewer.engine.pipeline import Analyzer

    photo = np.clip(np.full((60, 80, 3), (205, 160, 140)) + np.random.default_rng(0).normal(0, 6, (60, 80, 3)),
                    0, 255).astype(np.uint8)
    model = load_model(tiny_model_dir)
    enliven(model)
    settings = AnalysisSettings(method=Method.PROBE)
    plain = Analyzer(model, device="cpu").analyze(photo, settings)
    lo, hi = plain.malignancy_range  # no calibration: the samples' own spread
    assert lo <= plain.malignancy_probability <= hi and plain.malignancy_withheld is None
    cal = M.MalignancyCalibration(slope=0.5, intercept=-1.0, interval_quantile=1.5, spread_floor=0.3, coverage=0.9,
                                  ged_cutoff=-1.0)  # every mask counts as uncertain
    model.config = dict(model.config, malignancy_calibration=cal.to_dict())
    result = Analyzer(model, device="cpu").analyze(photo, settings)
    lo, hi = result.malignancy_range
    assert lo < result.malignancy_probability < hi
    assert result.malignancy_withheld == f"mask uncertain (GED {result.ged:.2f} above -1.00)"
    summary = json.loads(json.dumps(result.summary()))
    assert summary["malignancy_range"] == pytest.approx([lo, hi]) and summary["malignancy_withheld"].startswith("mask")
