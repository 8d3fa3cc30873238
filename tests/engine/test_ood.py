"""The out-of-distribution score: its read-outs, its fitted statistics, its cut-off, the config
section, and the Analyzer carrying ood_score / ood into analyze's JSON."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from lesionviewer.engine import ood
from lesionviewer.engine.analysis import AnalysisSettings, Method
from lesionviewer.engine.model import load_model
from lesionviewer.engine.pipeline import Analyzer
from lesionviewer.training.trust_fit import fit_ood, ood_scores

T = (60, 90, 120, 150)


def test_denoising_error_is_the_mean_squared_error_per_sample():
    noise = torch.zeros(2, 3, 4, 4)
    eps = torch.zeros(2, 3, 4, 4)
    eps[1] = 2.0
    assert ood.denoising_error(eps, noise).tolist() == [0.0, 4.0]


def test_feature_moments_are_channel_mean_then_spread_averaged_over_samples():
    f = torch.zeros(2, 2, 3, 3)
    f[0, 0] = 1.0  # sample 0, channel 0: constant 1 -> mean 1, spread 0
    f[1, 1, 0, 0] = 9.0  # sample 1, channel 1: one bright pixel -> mean 1, spread sqrt(8)
    m = ood.feature_moments(f)
    assert m.shape == (4,)
    assert m == pytest.approx([0.5, 0.5, 0.0, math.sqrt(8) / 2])


def _synthetic(n, shift=0.0, error_scale=1.0, seed=0, width=12):
    """name -> (n, d) statistics of photos: correlated feature moments and lesion features,
    and log denoising errors that fall with t."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).normal(size=(width, width)) / 3 + np.eye(width)
    moments = rng.normal(size=(n, width)) @ mix + shift
    lesion = rng.normal(size=(n, width)) @ mix.T
    errors = np.exp(rng.normal(np.log([0.04, 0.025, 0.018, 0.013]), 0.1, size=(n, 4))) * error_scale
    return {"moments": moments, "lesion": lesion, "log_errors": np.log(errors)}


@pytest.fixture(scope="module")
def fitted():
    calibration = _synthetic(200, seed=2)
    return fit_ood(_synthetic(400, seed=1), T, calibration, components=4, percentile=97.5), calibration


def test_cut_off_flags_the_chosen_share_of_calibration_photos(fitted):
    params, calibration = fitted
    flagged = ood_scores(params, calibration, T) > params.cutoff
    assert flagged.mean() == pytest.approx(0.025, abs=0.006)


def test_unlike_photos_score_above_the_cut_off(fitted):
    params, _ = fitted
    like = _synthetic(100, seed=3)
    shifted = _synthetic(100, shift=4.0, seed=4)  # other features
    easy = _synthetic(100, error_scale=0.3, seed=5)  # a blurred photo: noise too easy to predict
    assert (ood_scores(params, like, T) > params.cutoff).mean() < 0.08
    assert (ood_scores(params, shifted, T) > params.cutoff).mean() > 0.95
    assert (ood_scores(params, easy, T) > params.cutoff).mean() > 0.95


def test_a_missing_statistic_counts_its_typical_value(fitted):
    params, calibration = fitted
    one = {k: v[0] for k, v in calibration.items()}
    without_errors = ood.score(params, {**one, "log_errors": None}, T)
    other_steps = ood.score(params, one, (10, 20, 30, 40))
    assert without_errors == pytest.approx(other_steps)
    expected = sum(t.term(one[t.statistic]) for t in params.terms if t.statistic != "log_errors") + 1.0
    assert without_errors == pytest.approx(expected)


def test_params_survive_json_and_refuse_non_finite_numbers(fitted):
    params, _ = fitted
    back = ood.OODParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert back == params
    broken = params.to_dict()
    broken["terms"][0]["center"][0] = float("nan")
    with pytest.raises(ValueError, match="not finite"):
        ood.OODParams.from_dict(broken)


def _with_ood_section(tiny_model_dir, enliven, cutoff):
    """The lively tiny model with an ood section fitted on its own read-outs of six skin-like photos."""
    model = load_model(tiny_model_dir)
    enliven(model)
    analyzer = Analyzer(model, device="cpu")
    from lesionviewer.training.trust_calibrate import readouts

    tones = [(205, 160, 140), (190, 150, 130), (215, 170, 150), (180, 135, 120), (200, 150, 150), (195, 165, 135)]
    photos = [np.clip(np.full((40, 40, 3), tone, np.float64) + np.random.default_rng(i).normal(0, 6, (40, 40, 3)),
                      0, 255).astype(np.uint8) for i, tone in enumerate(tones)]
    from lesionviewer.training.trust_calibrate import timesteps_of
    from lesionviewer.training.trust_fit import stack_statistics

    statistics = stack_statistics(readouts(analyzer, photos))
    assert set(statistics) == set(ood.STATISTICS)
    params = fit_ood(statistics, timesteps_of(analyzer), statistics, components=2)
    params = dataclasses.replace(params, cutoff=cutoff)
    model.config = dict(model.config, ood=params.to_dict())
    return Analyzer(model, device="cpu")


def test_analysis_carries_the_score_and_flag_into_its_json(tiny_model_dir, enliven):
    photo = np.random.default_rng(7).integers(0, 255, (48, 64, 3), dtype=np.uint8)  # noise: nothing like skin
    strict = _with_ood_section(tiny_model_dir, enliven, cutoff=0.0)
    result = strict.analyze(photo, AnalysisSettings(method=Method.PROBE))
    summary = json.loads(json.dumps(result.summary()))
    assert summary["ood_score"] == pytest.approx(result.ood_score) and result.ood_score > 0
    assert summary["ood"] is True
    assert summary["malignancy_withheld"] == ood.OOD_MESSAGE
    lenient = _with_ood_section(tiny_model_dir, enliven, cutoff=2 * result.ood_score)
    again = lenient.analyze(photo, AnalysisSettings(method=Method.PROBE))
    assert again.ood_score == pytest.approx(result.ood_score)
    assert again.summary()["ood"] is False and again.malignancy_withheld is None


def test_a_model_without_the_section_reports_no_score(tiny_model_dir):
    result = Analyzer.from_dir(tiny_model_dir, device="cpu").analyze(np.zeros((40, 40, 3), np.uint8))
    assert result.ood_score is None and result.ood is None
    assert result.summary()["ood"] is None
