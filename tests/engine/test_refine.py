"""DenseCRF refinement: a vague probability blob snaps onto the lesion's colour edge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lesionviewer.engine.refine import CRFParams, crf_refine
from lesionviewer.engine.uncertainty import iou


def disk_scene(h=96, w=112, centre=(56, 48), radius=22):
    rng = np.random.default_rng(0)
    rgb = np.full((h, w, 3), (205, 160, 140), np.uint8)
    cv2.circle(rgb, centre, radius, (95, 55, 45), -1)
    rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    disk = np.zeros((h, w), np.uint8)
    cv2.circle(disk, centre, radius, 1, -1)
    return rgb, disk.astype(bool)


def vague_blob(disk: np.ndarray, shift=(7, -5), sigma=7.0) -> np.ndarray:
    moved = np.roll(disk.astype(np.float32), shift, axis=(0, 1))
    blurred = cv2.GaussianBlur(moved, (0, 0), sigma)
    return 0.15 + 0.7 * blurred  # never sure either way


def test_crf_snaps_an_offset_blurry_blob_onto_the_disk():
    rgb, disk = disk_scene()
    prob = vague_blob(disk)
    before = iou(prob >= 0.5, disk)
    refined = crf_refine(rgb, prob, CRFParams())
    after = iou(refined >= 0.5, disk)
    assert before < 0.8
    assert after > before + 0.1 and after > 0.85


def test_crf_returns_a_float32_marginal_at_the_input_size():
    rgb, disk = disk_scene()
    refined = crf_refine(rgb, vague_blob(disk), CRFParams(iterations=2))
    assert refined.shape == disk.shape and refined.dtype == np.float32
    assert 0 <= refined.min() and refined.max() <= 1


def test_crf_keeps_a_confident_empty_map_empty():
    rgb, disk = disk_scene()
    refined = crf_refine(rgb, np.zeros(disk.shape, np.float32), CRFParams())
    assert not (refined >= 0.5).any()


def test_image_and_probability_must_be_the_same_size():
    rgb, disk = disk_scene()
    with pytest.raises(ValueError, match="differ in size"):
        crf_refine(rgb[:-1], vague_blob(disk), CRFParams())


def test_params_from_a_config_ignore_unknown_keys():
    assert CRFParams.from_dict({"iterations": 3, "max_side": 128, "tuned_on": "val"}) == CRFParams(
        iterations=3, max_side=128)


def test_stepwise_inference_gives_exactly_the_marginals_of_one_inference_call():
    """crf_refine steps the mean-field iterations one by one (so another thread may take the
    Python lock between them); the result must be pydensecrf's inference(n), bit for bit."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    rgb, disk = disk_scene()
    prob = vague_blob(disk)
    params = CRFParams(iterations=5, bilateral_compat=10.0)
    h, w = prob.shape
    p = np.clip(prob.astype(np.float32), params.unary_clip, 1 - params.unary_clip)
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.stack([1 - p, p]))))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy, srgb=params.bilateral_srgb, rgbim=rgb,
                             compat=params.bilateral_compat)
    reference = np.asarray(crf.inference(params.iterations), np.float32)[1].reshape(h, w)
    np.testing.assert_array_equal(crf_refine(rgb, prob, params), reference)


def test_crf_runs_its_iterations_as_separate_calls(monkeypatch):
    """One pydensecrf call holds the Python lock until it returns: inference(n) froze the GUI
    thread for the whole run. Each iteration must be its own short call."""
    import pydensecrf.densecrf as dcrf

    real = dcrf.DenseCRF2D

    class Spy:  # forwards to a real DenseCRF2D (a Cython class: subclassing it crashes)
        steps = 0

        def __init__(self, *args):
            self._crf = real(*args)

        def __getattr__(self, name):
            return getattr(self._crf, name)

        def inference(self, n):
            raise AssertionError("inference(n) holds the Python lock for all n iterations")

        def stepInference(self, *args):
            Spy.steps += 1
            return self._crf.stepInference(*args)

    monkeypatch.setattr(dcrf, "DenseCRF2D", Spy)
    rgb, disk = disk_scene()
    refined = crf_refine(rgb, vague_blob(disk), CRFParams(iterations=5))
    assert Spy.steps == 5 and refined.shape == disk.shape
