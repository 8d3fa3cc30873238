"""Listing a folder of photos, and reading the ground-truth masks that sit next to them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lesionviewer.io.images import ImageLoadError, find_images, load_mask, reference_mask_for


def _touch_image(path, size=(8, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 80, 60)).save(path)
    return path


def test_find_images_lists_photos_only_in_natural_order(tmp_path):
    for name in ["img10.jpg", "img2.JPG", "Img1.png", "scan.tiff", "b.bmp", "c.webp", "d.heic", "e.jpeg",
                 "arm_overlay.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    skipped = [
        "img2_mask.png", "img2_segmentation.png", "ISIC_1_Segmentation.PNG",
        "img2.jpg.lesionviewer.json", "img2.jpg.lesionviewer-mask.png",
        "case_probability.png", "case_variance.png", "case_overlay.png", "case.json",
        ".hidden.jpg", "._img10.jpg", "notes.txt", "labels.csv", "movie.mp4",
    ]
    for name in skipped:
        (tmp_path / name).write_bytes(b"x")
    names = [p.name for p in find_images(tmp_path)]
    assert names == ["arm_overlay.jpg", "b.bmp", "c.webp", "d.heic", "e.jpeg", "Img1.png", "img2.JPG", "img10.jpg",
                     "scan.tiff"]  # a photo may be called *_overlay.jpg; our overlays are PNG


def test_find_images_recurses_but_not_into_hidden_or_own_folders(tmp_path):
    _touch_image(tmp_path / "top.jpg")
    _touch_image(tmp_path / "patient 2" / "visit10" / "a.jpg")
    _touch_image(tmp_path / "patient 2" / "visit9" / "a.jpg")
    _touch_image(tmp_path / ".thumbnails" / "t.jpg")
    _touch_image(tmp_path / "lesionviewer-cache" / "x.png")
    rel = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert rel == ["patient 2/visit9/a.jpg", "patient 2/visit10/a.jpg", "top.jpg"]
    assert [p.name for p in find_images(tmp_path, recursive=False)] == ["top.jpg"]
    assert all(p.is_absolute() == tmp_path.is_absolute() for p in find_images(tmp_path))


def test_find_images_on_a_missing_folder_says_so(tmp_path):
    with pytest.raises(NotADirectoryError, match="nowhere"):
        find_images(tmp_path / "nowhere")


def test_find_images_unicode_names(tmp_path):
    _touch_image(tmp_path / "läsion_日本.png")
    assert [p.name for p in find_images(tmp_path)] == ["läsion_日本.png"]


def test_reference_mask_for_finds_mask_then_segmentation(tmp_path):
    photo = _touch_image(tmp_path / "ISIC_0000001.jpg")
    assert reference_mask_for(photo) is None
    seg = _touch_image(tmp_path / "ISIC_0000001_segmentation.png")
    assert reference_mask_for(photo) == seg
    mask = _touch_image(tmp_path / "ISIC_0000001_mask.png")
    assert reference_mask_for(photo) == mask


def _save_levels(path, levels, mode=None):
    Image.fromarray(levels, mode).save(path) if mode else Image.fromarray(levels).save(path)
    return path


def test_load_mask_0_255_and_0_1(tmp_path):
    levels = np.zeros((4, 5), np.uint8)
    levels[1:3, 2:4] = 255
    expected = levels > 0
    np.testing.assert_array_equal(load_mask(_save_levels(tmp_path / "a.png", levels)), expected)
    np.testing.assert_array_equal(load_mask(_save_levels(tmp_path / "b.png", (levels > 0).astype(np.uint8))), expected)
    assert load_mask(tmp_path / "a.png").dtype == bool


def test_load_mask_palette_rgb_and_16_bit(tmp_path):
    expected = np.zeros((4, 5), bool)
    expected[0, 0] = expected[3, 4] = True
    pal = Image.fromarray(expected.astype(np.uint8), "L").convert("P")
    pal.save(tmp_path / "p.png")
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[expected] = (255, 255, 255)
    _save_levels(tmp_path / "rgb.png", rgb)
    _save_levels(tmp_path / "w16.png", expected.astype(np.uint16) * 65535)
    for name in ("p.png", "rgb.png", "w16.png"):
        np.testing.assert_array_equal(load_mask(tmp_path / name), expected, err_msg=name)


def test_load_mask_resizes_with_nearest_when_shape_differs(tmp_path):
    levels = np.zeros((2, 2), np.uint8)
    levels[0, 1] = 255
    _save_levels(tmp_path / "m.png", levels)
    big = load_mask(tmp_path / "m.png", shape=(4, 6, 3))
    assert big.shape == (4, 6)
    assert set(np.unique(big)) <= {False, True}
    np.testing.assert_array_equal(big[:2, 3:], True)
    assert big.sum() == 6
    same = load_mask(tmp_path / "m.png", shape=(2, 2))
    np.testing.assert_array_equal(same, levels > 0)


@pytest.mark.parametrize("content", [b"", b"not a png"])
def test_load_mask_bad_file_raises_image_load_error(tmp_path, content):
    (tmp_path / "bad_mask.png").write_bytes(content)
    with pytest.raises(ImageLoadError, match="bad_mask.png"):
        load_mask(tmp_path / "bad_mask.png")
    with pytest.raises(ImageLoadError, match="missing_mask.png"):
        load_mask(tmp_path / "missing_mask.png")
