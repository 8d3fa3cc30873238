"""Analyzer end to end on tiny random models: sizes, seeds, progress, cancel, regions, settings."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import cv2
import numpy as np
import pytest
import torch

from lesionviewer.engine import Analysis, AnalysisCancelled, AnalysisSettings, Analyzer, Method, Progress
from lesionviewer.engine.checkpoint import ModelError, save_model
from lesionviewer.engine.diffseg import Statistic
from lesionviewer.engine.model import load_model
from lesionviewer.engine.uncertainty import binary_entropy, ged


@pytest.fixture(scope="module")
def analyzer(tiny_model_dir) -> Analyzer:
    """The shared tiny model. Its zero-initialised residual branches keep the label from
    reaching the output, so DiffSeg sees no difference and the random probe calls
    everything lesion: good for plumbing, not for masks that vary."""
    return Analyzer.from_dir(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def lively(tiny_model_dir, enliven) -> Analyzer:
    """The tiny model with its zero-initialised layers perturbed: labels change the predicted
    noise, so DiffSeg masks depend on the image, the seed and the settings."""
    model = load_model(tiny_model_dir)
    enliven(model)
    return Analyzer(model, device="cpu")


def dermoscopy_like(h=173, w=251, seed=0) -> np.ndarray:
    """HxWx3 uint8 RGB: pinkish skin, a brown disk off centre, a little sensor noise."""
    rng = np.random.default_rng(seed)
    rgb = np.full((h, w, 3), (205, 160, 140), np.uint8)
    cv2.circle(rgb, (w // 2 - w // 10, h // 2), min(h, w) // 4, (95, 55, 45), -1)
    return np.clip(rgb + rng.normal(0, 5, rgb.shape), 0, 255).astype(np.uint8)


DIFFSEG = AnalysisSettings(method=Method.DIFFSEG)


def assert_full_resolution(result: Analysis, h: int, w: int) -> None:
    assert result.consensus_probability.shape == (h, w) and result.consensus_probability.dtype == np.float32
    assert result.consensus_mask.shape == (h, w) and result.consensus_mask.dtype == bool
    assert result.variance.shape == (h, w) and result.variance.dtype == np.float32
    assert result.entropy.shape == (h, w) and result.entropy.dtype == np.float32
    assert result.sample_masks.shape == (len(result.timesteps), h, w) and result.sample_masks.dtype == bool


def test_maps_come_back_at_an_odd_input_size(lively):
    result = lively.analyze(dermoscopy_like(173, 251), DIFFSEG)
    assert_full_resolution(result, 173, 251)
    assert 0 < result.consensus_mask.mean() < 1


def test_maps_come_back_at_the_size_of_a_large_photo(analyzer):
    rgb = np.full((3000, 4000, 3), 180, np.uint8)
    rgb[1000:2000, 1500:2500] = (90, 50, 40)
    result = analyzer.analyze(rgb, AnalysisSettings(samples=2))
    assert_full_resolution(result, 3000, 4000)


def test_the_same_seed_gives_the_same_analysis(lively):
    rgb = dermoscopy_like()
    a = lively.analyze(rgb, DIFFSEG, seed=7)
    b = lively.analyze(rgb, DIFFSEG, seed=7)
    np.testing.assert_array_equal(a.sample_masks, b.sample_masks)
    np.testing.assert_array_equal(a.consensus_probability, b.consensus_probability)
    assert a.ged == b.ged and a.malignancy_probability == b.malignancy_probability
    assert a.seed == 7


def test_different_seeds_give_different_samples(lively):
    rgb = dermoscopy_like()
    a = lively.analyze(rgb, DIFFSEG, seed=0)
    b = lively.analyze(rgb, DIFFSEG, seed=1)
    assert (a.sample_masks != b.sample_masks).any()
    assert a.malignancy_probability != b.malignancy_probability


def test_progress_counts_up_to_the_total(lively):
    reports: list[Progress] = []
    lively.analyze(dermoscopy_like(), AnalysisSettings(samples=3), progress=reports.append)
    steps = [r.step for r in reports]
    total = reports[0].total
    assert total == 3 + 3  # prepare, denoiser, one refinement per sample, summary
    assert all(r.total == total for r in reports)
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == total
    assert reports[-1].stage == "done"
    assert [r.stage for r in reports].count("DenseCRF 2/3") == 1
    assert reports[0].remaining_s is None and reports[2].remaining_s is not None
    elapsed = [r.elapsed_s for r in reports]
    assert elapsed == sorted(elapsed)


def test_cancel_stops_between_steps_and_the_analyzer_stays_usable(lively):
    asked, reports = [], []

    def cancelled() -> bool:
        asked.append(True)
        return len(asked) >= 3  # let two steps start, stop before the third

    with pytest.raises(AnalysisCancelled):
        lively.analyze(dermoscopy_like(), DIFFSEG, progress=reports.append, cancelled=cancelled)
    assert [r.step for r in reports] == [0, 1]
    with pytest.raises(AnalysisCancelled):
        lively.analyze(dermoscopy_like(), DIFFSEG, progress=reports.append, cancelled=lambda: True)
    assert len(reports) == 2
    result = lively.analyze(dermoscopy_like(), DIFFSEG, cancelled=lambda: False)
    assert result.sample_masks.shape[0] == 4


def test_region_analysis_leaves_the_rest_background(analyzer):
    rgb = dermoscopy_like()
    everything = analyzer.analyze(rgb)
    outside = np.ones(rgb.shape[:2], bool)
    outside[30:110, 40:140] = False
    assert everything.consensus_mask[outside].any()  # this model calls everything lesion
    result = analyzer.analyze(rgb, region=(40, 30, 100, 80))
    assert result.region == (40, 30, 100, 80)
    assert result.summary()["region"] == [40, 30, 100, 80]
    assert_full_resolution(result, 173, 251)
    assert not result.sample_masks[:, outside].any()
    assert (result.consensus_probability[outside] == 0).all() and (result.variance[outside] == 0).all()
    assert result.consensus_mask[~outside].all()


def test_a_region_over_the_edge_is_clipped_and_a_tiny_one_refused(analyzer):
    result = analyzer.analyze(dermoscopy_like(), AnalysisSettings(samples=1), region=(200, 150, 100, 100))
    assert result.region == (200, 150, 51, 23)
    with pytest.raises(ValueError, match="region"):
        analyzer.analyze(dermoscopy_like(), region=(10, 10, 4, 40))
    with pytest.raises(ValueError, match="region"):
        analyzer.analyze(dermoscopy_like(), region=(300, 10, 40, 40))


@pytest.mark.parametrize("samples", [1, 2, 5])
def test_the_samples_setting_sets_the_number_of_masks(analyzer, samples):
    result = analyzer.analyze(dermoscopy_like(60, 80), AnalysisSettings(samples=samples, timestep_range=(40, 200)))
    assert result.sample_masks.shape[0] == samples == len(result.timesteps)
    assert result.timesteps[0] == 40 and (samples == 1 or result.timesteps[-1] == 200)
    assert result.settings["samples"] == samples and result.settings["timestep_range"] == [40, 200]


def test_settings_out_of_range_are_refused(analyzer):
    with pytest.raises(ValueError, match="samples"):
        analyzer.analyze(dermoscopy_like(60, 80), AnalysisSettings(samples=0))
    with pytest.raises(ValueError, match="timestep range"):
        analyzer.analyze(dermoscopy_like(60, 80), AnalysisSettings(timestep_range=(100, 1000)))


def test_without_crf_the_masks_are_not_refined(lively):
    reports: list[Progress] = []
    plain = lively.analyze(dermoscopy_like(), AnalysisSettings(method=Method.DIFFSEG, crf=False),
                           progress=reports.append)
    refined = lively.analyze(dermoscopy_like(), AnalysisSettings(method=Method.DIFFSEG, crf=True))
    assert plain.settings["crf"] is False and refined.settings["crf"] is True
    assert not any("DenseCRF" in r.stage for r in reports)
    assert (plain.sample_masks != refined.sample_masks).any()


@pytest.mark.parametrize("method", list(Method))
def test_every_method_runs(analyzer, method):
    result = analyzer.analyze(dermoscopy_like(60, 80), AnalysisSettings(method=method, samples=2))
    assert result.settings["method"] == method.value
    assert_full_resolution(result, 60, 80)
    assert 0 <= result.malignancy_probability <= 1


def test_defaults_come_from_the_model(analyzer):
    d = analyzer.default_settings
    assert (d.samples, d.timestep_range, d.crf, d.method) == (4, (60, 150), True, Method.FUSED)
    assert analyzer.working_size == 32 and analyzer.device == "cpu"
    assert analyzer.model_name == "tiny-random-test"
    assert analyzer.model_id.startswith("tiny-random-test@") and len(analyzer.model_id) == len("tiny-random-test@") + 8
    result = analyzer.analyze(dermoscopy_like(60, 80))
    assert result.settings["method"] == "fused" and result.settings["samples"] == 4
    assert result.model_id == analyzer.model_id and result.device == "cpu"


def test_the_error_difference_statistic_gives_its_own_masks(lively):
    rgb = dermoscopy_like()
    settings = AnalysisSettings(method=Method.DIFFSEG, crf=False)
    published = lively.analyze(rgb, settings)
    params = lively.model.diffseg
    # theta 0: lesion where the lesion label predicts the added noise better (a random model's
    # Otsu split here falls inside the negative values, and hole filling then takes everything).
    lively.model.diffseg = dataclasses.replace(params, statistic=Statistic.ERROR_DIFFERENCE, threshold=0.0)
    try:
        signed = lively.analyze(rgb, settings)
    finally:
        lively.model.diffseg = params
    assert_full_resolution(signed, *rgb.shape[:2])
    assert 0 < signed.consensus_mask.mean() < 1
    assert (signed.sample_masks != published.sample_masks).any()


@pytest.fixture(scope="module")
def probeless_dir(tiny_model_dir, tmp_path_factory):
    model = load_model(tiny_model_dir)
    config = {k: v for k, v in model.config.items() if k not in ("weights", "format", "format_version")}
    # A config whose default needs the probe is refused (tests/engine/test_model_trust.py).
    config.update(probe=None, malignancy=None, defaults=dict(config["defaults"], method="diffseg"))
    model.probe = model.malignancy = None
    target = tmp_path_factory.mktemp("probeless") / "model"
    save_model(target, config, model.state_dict())
    return target


def test_a_model_without_a_probe_defaults_to_diffseg_and_refuses_the_probe(probeless_dir):
    analyzer = Analyzer.from_dir(probeless_dir, device="cpu")
    assert analyzer.default_settings.method is Method.DIFFSEG
    result = analyzer.analyze(dermoscopy_like(60, 80))
    assert result.settings["method"] == "diffseg" and result.malignancy_probability is None
    for method in (Method.PROBE, Method.FUSED):
        with pytest.raises(ModelError, match="no trained probe"):
            analyzer.analyze(dermoscopy_like(60, 80), AnalysisSettings(method=method))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((40, 50, 3), np.float32),
        np.zeros((40, 50), np.uint8),
        np.zeros((40, 50, 4), np.uint8),
        np.zeros((40, 50, 3), np.uint16),
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((0, 50, 3), np.uint8),
        [[[0, 0, 0]]],
    ],
    ids=["float", "grayscale", "rgba", "uint16", "empty", "no-rows", "list"],
)
def test_images_that_are_not_hxwx3_uint8_are_refused(analyzer, image):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        analyzer.analyze(image)


def test_a_flipped_view_of_an_array_is_analysed_like_a_copy(lively):
    bgr = np.ascontiguousarray(dermoscopy_like()[..., ::-1])
    view = bgr[..., ::-1]  # how OpenCV users turn BGR into RGB
    a = lively.analyze(view, DIFFSEG)
    b = lively.analyze(np.ascontiguousarray(view), DIFFSEG)
    np.testing.assert_array_equal(a.sample_masks, b.sample_masks)


def test_consensus_variance_and_entropy_follow_the_sample_masks(lively):
    result = lively.analyze(dermoscopy_like(), AnalysisSettings(method=Method.DIFFSEG, crf=False, samples=6))
    p = result.sample_masks.mean(axis=0)
    assert 0 < result.variance.max()  # the samples disagree somewhere
    np.testing.assert_allclose(result.consensus_probability, p, atol=1e-6)
    np.testing.assert_allclose(result.variance, p * (1 - p), atol=1e-6)
    np.testing.assert_allclose(result.entropy, binary_entropy(p), atol=1e-6)
    np.testing.assert_array_equal(result.consensus_mask, result.consensus_probability >= 0.5)
    assert result.ged == pytest.approx(ged(result.sample_masks), abs=0.05)
    assert 0 < result.ged <= 1


def test_the_threshold_setting_moves_the_consensus_mask(lively):
    rgb = dermoscopy_like()
    loose = lively.analyze(rgb, AnalysisSettings(method=Method.DIFFSEG, crf=False, samples=6, threshold=0.2))
    strict = lively.analyze(rgb, AnalysisSettings(method=Method.DIFFSEG, crf=False, samples=6, threshold=0.9))
    np.testing.assert_array_equal(loose.consensus_probability, strict.consensus_probability)
    assert strict.consensus_mask.sum() < loose.consensus_mask.sum()
    assert not (strict.consensus_mask & ~loose.consensus_mask).any()


def test_skin_tone_is_read_around_the_lesion(lively):
    result = lively.analyze(dermoscopy_like(), DIFFSEG)
    lab = cv2.cvtColor(np.full((1, 1, 3), (205, 160, 140), np.uint8), cv2.COLOR_RGB2LAB).astype(float)[0, 0]
    expected = math.degrees(math.atan((lab[0] * 100 / 255 - 50) / (lab[2] - 128)))
    assert result.skin_tone.ita_degrees == pytest.approx(expected, abs=2.0)
    assert result.skin_tone.skin_pixels > 0


@pytest.mark.parametrize("model", ["analyzer", "lively"])
def test_the_summary_is_strict_json(request, model):
    # The shared tiny model calls everything lesion, so no skin is left: ITA is unknown.
    result = request.getfixturevalue(model).analyze(dermoscopy_like(60, 80))
    summary = result.summary()
    text = json.dumps(summary, allow_nan=False)
    back = json.loads(text)
    assert back["model_id"] == result.model_id and back["settings"]["method"] == result.settings["method"]
    assert set(back) >= {"ged", "malignancy_probability", "skin_tone", "settings", "seconds", "seed", "timesteps"}
    assert back["seconds"]["total"] > 0
    assert back["lesion_fraction"] == pytest.approx(result.consensus_mask.mean())
    assert back["skin_tone"]["group"] == result.skin_tone.group


def test_analysis_does_not_change_the_callers_image(lively):
    rgb = dermoscopy_like()
    before = rgb.copy()
    lively.analyze(rgb, DIFFSEG, region=(10, 10, 100, 100))
    np.testing.assert_array_equal(rgb, before)


def test_copying_the_model_folder_keeps_its_identity(tiny_model_dir, tmp_path, analyzer):
    copy = Analyzer.from_dir(shutil.copytree(tiny_model_dir, tmp_path / "copy"), device="cpu")
    assert copy.model_id == analyzer.model_id


# The soft design (a model config with an "uncertainty" section): flipped views, one probe
# member per sample, one DenseCRF on the soft consensus, GED and variance before refinement.

SOFT_DESIGN = {"views": 2, "member_per_sample": True, "soft": True}


@pytest.fixture(scope="module")
def soft(tiny_model_dir, enliven) -> Analyzer:
    model = load_model(tiny_model_dir)
    enliven(model)
    model.config = dict(model.config, uncertainty=SOFT_DESIGN, trust={"ged_low": 0.02, "ged_high": 0.3})
    return Analyzer(model, device="cpu")


@pytest.mark.parametrize("k", range(8))
def test_every_view_is_undone_by_its_inverse(k):
    from lesionviewer.engine.pipeline import unview, view

    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert torch.equal(unview(view(x, k), k), x)
    assert k == 0 or not torch.equal(view(x, k), x)  # each is a real change of the square


def test_the_soft_consensus_is_continuous_and_the_variance_is_the_soft_samples(soft):
    result = soft.analyze(dermoscopy_like(), AnalysisSettings(method=Method.PROBE, samples=6))
    assert_full_resolution(result, 173, 251)
    # Votes of 6 binary samples would give at most 7 values; the soft consensus gives many,
    # so the threshold slider moves the mask smoothly.
    assert len(np.unique(result.consensus_probability)) > 50
    assert 0 < result.variance.max() <= 0.25 and len(np.unique(result.variance)) > 50
    np.testing.assert_array_equal(result.consensus_mask, result.consensus_probability >= 0.5)
    np.testing.assert_allclose(result.entropy, binary_entropy(result.consensus_probability), atol=0.05)


def test_soft_samples_and_ged_are_taken_before_the_crf(soft):
    rgb = dermoscopy_like()
    refined = soft.analyze(rgb, AnalysisSettings(method=Method.FUSED, crf=True))
    plain = soft.analyze(rgb, AnalysisSettings(method=Method.FUSED, crf=False))
    np.testing.assert_array_equal(refined.sample_masks, plain.sample_masks)
    assert refined.ged == plain.ged
    assert (refined.consensus_probability != plain.consensus_probability).any()  # the CRF did act
    assert refined.ged == pytest.approx(ged(refined.sample_masks), abs=0.05)


def test_the_soft_design_refines_once_and_reports_it(soft):
    reports: list[Progress] = []
    soft.analyze(dermoscopy_like(), AnalysisSettings(samples=5), progress=reports.append)
    stages = [r.stage for r in reports]
    assert reports[0].total == 4 and stages.count("DenseCRF on the consensus") == 1
    assert not any(stage.startswith("DenseCRF 1/") for stage in stages)


def test_views_and_members_make_the_samples_differ_where_the_model_is_unsure(tiny_model_dir, enliven):
    model = load_model(tiny_model_dir)
    enliven(model)
    rgb = dermoscopy_like()
    same_noise = AnalysisSettings(method=Method.PROBE, samples=4, timestep_range=(100, 100), crf=False)
    spreads = {}
    for name, design in {"plain": {"views": 1, "member_per_sample": False, "soft": True},
                         "views+members": SOFT_DESIGN}.items():
        model.config = dict(model.config, uncertainty=design)
        result = Analyzer(model, device="cpu").analyze(rgb, same_noise, seed=3)
        spreads[name] = float(result.variance.mean())
    assert spreads["views+members"] != spreads["plain"]


def test_ged_level_comes_from_the_models_fitted_cutoffs(soft, analyzer):
    result = soft.analyze(dermoscopy_like())
    assert result.ged_level == ("low" if result.ged < 0.02 else "high" if result.ged >= 0.3 else "medium")
    assert result.summary()["ged_level"] == result.ged_level
    assert analyzer.analyze(dermoscopy_like(60, 80)).ged_level is None  # no cut-offs fitted


def test_a_soft_region_analysis_leaves_the_rest_empty(soft):
    rgb = dermoscopy_like()
    result = soft.analyze(rgb, region=(40, 30, 100, 80))
    outside = np.ones(rgb.shape[:2], bool)
    outside[30:110, 40:140] = False
    assert_full_resolution(result, 173, 251)
    assert not result.sample_masks[:, outside].any() and not result.consensus_mask[outside].any()
    assert (result.variance[outside] == 0).all()


def test_refining_every_soft_sample_gives_a_continuous_mean_of_marginals(tiny_model_dir, enliven):
    model = load_model(tiny_model_dir)
    enliven(model)
    model.config = dict(model.config, uncertainty=dict(SOFT_DESIGN, crf_samples=True))
    analyzer = Analyzer(model, device="cpu")
    rgb = dermoscopy_like()
    reports: list[Progress] = []
    refined = analyzer.analyze(rgb, AnalysisSettings(method=Method.FUSED, samples=3), progress=reports.append)
    plain = analyzer.analyze(rgb, AnalysisSettings(method=Method.FUSED, samples=3, crf=False))
    assert reports[0].total == 3 + 3 and [r.stage for r in reports].count("DenseCRF 2/3") == 1
    assert (refined.sample_masks != plain.sample_masks).any()  # masks and GED after the CRF
    assert refined.ged == pytest.approx(ged(refined.sample_masks), abs=0.05)
    assert len(np.unique(refined.consensus_probability)) > 3 + 1  # not votes


def test_an_unset_threshold_is_the_models_own_and_a_bad_one_is_refused(tiny_model_dir):
    model = load_model(tiny_model_dir)
    model.config.setdefault("defaults", {})["threshold"] = 0.4
    analyzer = Analyzer(model, device="cpu")
    assert analyzer.resolve(AnalysisSettings()).threshold == pytest.approx(0.4)
    assert analyzer.resolve(AnalysisSettings(threshold=0.7)).threshold == pytest.approx(0.7)
    with pytest.raises(ValueError, match="threshold"):
        analyzer.resolve(AnalysisSettings(threshold=1.5))
