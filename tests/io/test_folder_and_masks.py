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


# --- entries that are not photos at all (issue 12, item 8) ---------------------------------------

def _blocks_never(function, *args, seconds=10):
    """Run ``function`` in a daemon thread; fail (instead of hanging the suite) if it blocks."""
    import threading

    outcome = {}

    def target():
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_a_photo_is_listed_and_refused_without_being_opened(tmp_path):
    import os

    from lesionviewer.io.hashing import content_hash
    from lesionviewer.io.images import load_image

    _touch_image(tmp_path / "good.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    assert [p.name for p in find_images(tmp_path)] == ["good.jpg", "pipe.jpg"]
    with pytest.raises(ImageLoadError, match=r"'pipe.jpg'.*named pipe"):
        _blocks_never(load_image, tmp_path / "pipe.jpg")
    with pytest.raises(OSError, match="not a regular file"):
        _blocks_never(content_hash, tmp_path / "pipe.jpg")
    assert load_image(tmp_path / "good.jpg").width == 8


def test_a_symlink_loop_is_listed_and_refused_in_one_sentence(tmp_path):
    import os

    from lesionviewer.io.images import load_image, resolved

    _touch_image(tmp_path / "good.jpg")
    os.symlink(tmp_path / "b.jpg", tmp_path / "a.jpg")
    os.symlink(tmp_path / "a.jpg", tmp_path / "b.jpg")
    os.symlink(tmp_path, tmp_path / "folder-loop")  # a link to a folder is not followed
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    names = [p.name for p in find_images(tmp_path)]
    assert names == ["a.jpg", "b.jpg", "dangling.jpg", "good.jpg"]
    for name in ("a.jpg", "b.jpg"):
        with pytest.raises(ImageLoadError, match="link loop") as info:
            load_image(tmp_path / name)
        assert "\n" not in str(info.value)
        assert resolved(tmp_path / name) == tmp_path / name  # Path.resolve raises RuntimeError
    with pytest.raises(ImageLoadError, match="link to a file that does not exist"):
        load_image(tmp_path / "dangling.jpg")


def test_an_unreadable_sub_folder_is_reported_and_the_rest_listed(tmp_path, monkeypatch):
    import os

    _touch_image(tmp_path / "good.jpg")
    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(tmp_path / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # root reads any folder; os.walk lists with scandir
    problems: list[str] = []
    assert [p.name for p in find_images(tmp_path, problems=problems)] == ["good.jpg"]
    assert len(problems) == 1 and "locked" in problems[0] and "Permission denied" in problems[0]
