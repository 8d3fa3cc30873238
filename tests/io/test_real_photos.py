"""The two real dermoscopy cases in tests/data (see ATTRIBUTION.md) go through the io layer intact."""

from __future__ import annotations

import shutil

import numpy as np

from lesionviewer.io.export import coco_from_cases, export_case, rle_decode
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.images import find_images, load_image, load_mask, reference_mask_for
from lesionviewer.io.sidecar import CaseSidecar, load_sidecar, save_sidecar


def test_folder_lists_the_photos_and_pairs_them_with_their_masks(test_data):
    photos = find_images(test_data)
    assert [p.name for p in photos] == ["ISIC_0000068.jpg", "ISIC_0024311.jpg"]
    for photo in photos:
        assert reference_mask_for(photo) == photo.with_name(photo.stem + "_mask.png")


def test_photos_and_masks_load_at_their_source_size(test_data):
    expected = {"ISIC_0000068.jpg": (192, 256), "ISIC_0024311.jpg": (450, 600)}
    for name, shape in expected.items():
        img = load_image(test_data / name)
        assert img.rgb.shape == (*shape, 3) and img.source_format == "JPEG"
        mask = load_mask(reference_mask_for(img.path), shape=img.rgb.shape)
        assert mask.shape == shape
        assert 0.005 < mask.mean() < 0.6  # a lesion, not an empty or inverted mask


def test_export_and_coco_keep_the_expert_mask_exactly(test_data, tmp_path):
    cases = []
    for photo in find_images(test_data):
        img = load_image(photo)
        mask = load_mask(reference_mask_for(photo), shape=img.rgb.shape)
        paths = export_case(tmp_path, photo.stem, img.rgb, mask, None, None, isic_naming=True, source_path=photo)
        np.testing.assert_array_equal(load_mask(paths["mask"]), mask)
        cases.append((photo.name, mask))
    coco = coco_from_cases(cases)
    for annotation, (_, mask) in zip(coco["annotations"], cases):
        np.testing.assert_array_equal(rle_decode(annotation["segmentation"]), mask)
        assert annotation["area"] == int(mask.sum())


def test_edits_on_a_real_photo_are_found_again(test_data, tmp_path):
    photo = tmp_path / "ISIC_0024311.jpg"
    shutil.copyfile(test_data / photo.name, photo)
    mask = load_mask(test_data / "ISIC_0024311_mask.png")
    mask[:20, :20] = True
    save_sidecar(CaseSidecar(photo.name, content_hash(photo), edited_mask=mask), photo, tmp_path / "fb")
    np.testing.assert_array_equal(load_sidecar(photo, tmp_path / "fb").edited_mask, mask)
