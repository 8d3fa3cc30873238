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
