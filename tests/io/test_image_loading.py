"""Opening photos the way a dermatologist's folder holds them; every failure is one clear sentence."""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from lesionviewer.io import images
from lesionviewer.io.images import ImageLoadError, LoadedImage, load_image


def _gradient(height=48, width=64) -> np.ndarray:
    """HxWx3 uint8 with distinct, smooth channels (survives JPEG well)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 90)], -1).astype(np.uint8)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- formats ------------------------------------------------------------------------------


def test_jpeg_loads_as_rgb_uint8_full_resolution(tmp_path):
    path = tmp_path / "case.jpg"
    Image.fromarray(_gradient()).save(path, quality=95)
    img = load_image(path)
    assert isinstance(img, LoadedImage)
    assert img.rgb.shape == (48, 64, 3) and img.rgb.dtype == np.uint8
    assert (img.width, img.height) == (64, 48)
    assert img.source_format == "JPEG" and img.bit_depth == 8 and img.exif_orientation == 1
    assert img.rgb.flags.c_contiguous and img.rgb.flags.writeable
    assert np.abs(img.rgb.astype(int) - _gradient()).max() <= 8


@pytest.mark.parametrize("suffix,kwargs", [(".png", {}), (".bmp", {}), (".webp", {"lossless": True}), (".tif", {})])
def test_lossless_formats_give_the_exact_pixels(tmp_path, suffix, kwargs):
    path = tmp_path / f"case{suffix}"
    Image.fromarray(_gradient()).save(path, **kwargs)
    np.testing.assert_array_equal(load_image(path).rgb, _gradient())


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = _gradient()[..., 0]
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    rgb = load_image(tmp_path / "gray.png").rgb
    assert rgb.shape == (48, 64, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray)


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish everywhere
    rgba[0, 0, 3] = 0  # fully transparent -> white
    rgba[0, 1, 3] = 255  # opaque -> itself
    rgba[0, 2, 3] = 128  # half -> halfway to white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    rgb = load_image(tmp_path / "alpha.png").rgb
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[0, 1]) == (200, 0, 0)
    expected = [round((v * 128 + 255 * 127) / 255) for v in (200, 0, 0)]
    assert np.abs(rgb[0, 2].astype(int) - expected).max() <= 1


def test_palette_with_transparency_and_without(tmp_path):
    pal = Image.new("P", (3, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.putpixel((2, 0), 0)
    pal.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(load_image(tmp_path / "pal.png").rgb[0], [[255, 0, 0], [0, 0, 255], [255, 0, 0]])
    pal.save(tmp_path / "pal_t.png", transparency=0)
    np.testing.assert_array_equal(load_image(tmp_path / "pal_t.png").rgb[0], [[255] * 3, [0, 0, 255], [255] * 3])


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[:, :8, 0] = 255  # pure cyan on the left, white (no ink) on the right
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    img = load_image(tmp_path / "cmyk.jpg")
    assert img.rgb.shape == (16, 16, 3)
    assert np.abs(img.rgb[8, 2].astype(int) - (0, 255, 255)).max() <= 12
    assert np.abs(img.rgb[8, 13].astype(int) - (255, 255, 255)).max() <= 12


def test_16bit_tiff_is_scaled_over_the_full_range(tmp_path):
    rgb16 = np.zeros((2, 3, 3), np.uint16)
    rgb16[0, 0] = 65535
    rgb16[0, 1] = 257 * 100  # exactly 100 in 8 bit
    rgb16[0, 2] = 32768
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb")
    img = load_image(tmp_path / "rgb16.tif")
    assert img.bit_depth == 16 and img.source_format == "TIFF"
    assert tuple(img.rgb[0, 0]) == (255, 255, 255)
    assert tuple(img.rgb[0, 1]) == (100, 100, 100)
    assert tuple(img.rgb[0, 2]) == (128, 128, 128)
    assert tuple(img.rgb[1, 0]) == (0, 0, 0)


def test_16bit_grayscale_tiff_and_png(tmp_path):
    gray16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "g16.tiff", gray16, photometric="minisblack")
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    expected = np.rint(gray16 / 65535 * 255).astype(np.uint8)
    for name in ("g16.tiff", "g16.png"):
        img = load_image(tmp_path / name)
        assert img.bit_depth == 16, name
        np.testing.assert_array_equal(img.rgb[..., 1], expected, err_msg=name)


def test_16bit_colour_png_keeps_precision(tmp_path):
    import cv2

    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[0, 0] = (65535, 257 * 10, 0)
    rgb16[1, 1] = (129, 128, 32896)  # rounds to 1, 0, 128 (Pillow's high byte would give 0, 0, 128)
    assert cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])
    img = load_image(tmp_path / "c16.png")
    assert img.bit_depth == 16
    assert tuple(img.rgb[0, 0]) == (255, 10, 0)
    assert tuple(img.rgb[1, 1]) == (1, 0, 128)


def test_16bit_rgba_png_is_composited_on_white(tmp_path):
    import cv2

    rgba16 = np.zeros((1, 2, 4), np.uint16)
    rgba16[0, 0] = (65535, 0, 0, 0)  # transparent red -> white
    rgba16[0, 1] = (65535, 0, 0, 65535)  # opaque red
    assert cv2.imwrite(str(tmp_path / "a16.png"), rgba16[..., [2, 1, 0, 3]])
    np.testing.assert_array_equal(load_image(tmp_path / "a16.png").rgb[0], [[255, 255, 255], [255, 0, 0]])


def test_min_is_white_tiff_is_not_shown_inverted(tmp_path):
    stored = np.array([[0, 255]], np.uint8)  # MINISWHITE: 0 means white
    tifffile.imwrite(tmp_path / "scan.tif", stored, photometric="miniswhite")
    np.testing.assert_array_equal(load_image(tmp_path / "scan.tif").rgb[0], [[255] * 3, [0] * 3])


def test_tiff_orientation_tag_is_applied(tmp_path):
    stored = _gradient(6, 10)
    tifffile.imwrite(tmp_path / "o.tif", stored, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    img = load_image(tmp_path / "o.tif")
    assert img.exif_orientation == 6
    np.testing.assert_array_equal(img.rgb, np.rot90(stored, k=-1))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.png"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_gradient(6, 10)).save(path, exif=exif.tobytes())
    img = load_image(path)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert img.exif_orientation == orientation
    np.testing.assert_array_equal(img.rgb, expected)


def test_rotated_camera_jpeg_shows_upright_and_the_file_is_not_rewritten(tmp_path):
    stored = np.full((40, 60, 3), 255, np.uint8)
    stored[:10, :10] = (255, 0, 0)  # red mark at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # camera held rotated: display = stored turned 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    before = _sha(path), path.stat().st_mtime_ns
    img = load_image(path)
    assert img.rgb.shape == (60, 40, 3) and (img.width, img.height) == (40, 60)
    assert img.exif_orientation == 6
    assert img.rgb[3, 36, 0] > 200 and img.rgb[3, 36, 1] < 60  # mark now at the top-right
    assert img.rgb[3, 3, 1] > 200  # top-left is white
    assert (_sha(path), path.stat().st_mtime_ns) == before


def test_heic_loads_upright_when_pillow_heif_can_write(tmp_path):
    path = tmp_path / "iphone.heic"
    exif = Image.Exif()
    exif[0x0112] = 6
    try:
        Image.fromarray(_gradient(32, 48)).save(path, exif=exif.tobytes(), quality=95)
    except Exception as exc:  # encoder not built in
        pytest.skip(f"pillow-heif cannot write HEIC here: {exc}")
    img = load_image(path)
    assert img.source_format == "HEIF"
    assert img.rgb.shape == (48, 32, 3)  # turned once, not twice
    assert img.exif_orientation == 6
    upright = np.rot90(_gradient(32, 48), k=-1).astype(int)
    assert np.abs(img.rgb.astype(int) - upright).mean() < 12


def test_png_misnamed_as_jpg_still_opens(tmp_path):
    Image.fromarray(_gradient()).save(tmp_path / "really_png.jpg", format="PNG")
    img = load_image(tmp_path / "really_png.jpg")
    assert img.source_format == "PNG"
    np.testing.assert_array_equal(img.rgb, _gradient())


def test_unicode_file_name(tmp_path):
    folder = tmp_path / "Patiënt Müller"
    folder.mkdir()
    path = folder / "läsion_日本.png"
    Image.fromarray(_gradient()).save(path)
    np.testing.assert_array_equal(load_image(path).rgb, _gradient())
    np.testing.assert_array_equal(load_image(str(path)).rgb, _gradient())


@pytest.mark.slow
def test_fifty_megapixel_jpeg_loads_at_full_resolution_quickly(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (8660, 5774), (180, 120, 100)).save(path, quality=90)  # 50 MP
    start = time.perf_counter()
    img = load_image(path)
    elapsed = time.perf_counter() - start
    assert img.rgb.shape == (5774, 8660, 3)
    assert elapsed < 15, f"50 MP took {elapsed:.1f} s"


# -- failures -----------------------------------------------------------------------------


def _assert_clear_error(path, *words):
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert path.name in message
    assert "\n" not in message and message.endswith(".")
    for word in words:
        assert word in message.lower()
    return message


def test_missing_file(tmp_path):
    _assert_clear_error(tmp_path / "gone.jpg", "does not exist")


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "folder.jpg").mkdir()
    _assert_clear_error(tmp_path / "folder.jpg", "folder")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    _assert_clear_error(tmp_path / "empty.jpg", "empty")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("patient notes, not a photo\n" * 20)
    _assert_clear_error(tmp_path / "notes.jpg", "not an image")


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_truncated_file(tmp_path, fmt, suffix):
    full = tmp_path / f"full{suffix}"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(full, format=fmt)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _assert_clear_error(cut, "damaged")


def test_corrupt_data_after_a_valid_header(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(_gradient()).save(good)
    data = bytearray(good.read_bytes())
    data[60:200] = b"\x00\xff" * 70
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    _assert_clear_error(bad, "damaged")


def test_truncated_tiff(tmp_path):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, np.random.default_rng(1).integers(0, 65535, (64, 64, 3), dtype=np.uint16))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[:5000])
    with pytest.raises(ImageLoadError, match="cut.tif"):
        load_image(cut)


def test_unreadable_permission(tmp_path, monkeypatch):
    path = tmp_path / "locked.jpg"
    Image.fromarray(_gradient()).save(path)
    real_open = os.open

    def denied(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(images.os, "open", denied)  # the check opens with os.open (non-blocking)
    _assert_clear_error(path, "permission")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_permission_for_real(tmp_path):
    path = tmp_path / "locked.jpg"
    Image.fromarray(_gradient()).save(path)
    path.chmod(0)
    try:
        _assert_clear_error(path, "permission")
    finally:
        path.chmod(0o644)


def test_pixel_limit_refuses_with_the_size_in_the_message(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    Image.fromarray(_gradient()).save(tmp_path / "huge.png")
    tifffile.imwrite(tmp_path / "huge.tif", _gradient(), photometric="rgb")
    for name in ("huge.png", "huge.tif"):
        message = _assert_clear_error(tmp_path / name, "too large")
        assert "64 x 48" in message


def test_unicode_name_appears_in_the_error(tmp_path):
    (tmp_path / "läsion_日本.jpg").write_bytes(b"nonsense")
    _assert_clear_error(tmp_path / "läsion_日本.jpg")


def test_a_jpeg_whose_header_claims_more_pixels_than_its_bytes_hold_is_refused(tmp_path):
    """A 64x64 JPEG with its frame size patched to 10000 x 11000: libjpeg only warns and would
    hand back a grey 110 MP image."""
    import io
    import struct

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, 11000, 10000)
    (tmp_path / "claims.jpg").write_bytes(bytes(data))
    message = _assert_clear_error(tmp_path / "claims.jpg", "damaged", "10000 x 11000")
    assert "\n" not in message
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_large_plain_jpegs_are_not_mistaken_for_damaged_ones(tmp_path):
    """The bound is one bit per 8x8 block: even a uniform 2000x1500 photo at quality 1 holds more."""
    for colour, progressive in ((0, False), (128, True)):
        path = tmp_path / f"flat{colour}.jpg"
        Image.new("RGB", (2000, 1500), (colour,) * 3).save(path, quality=1, progressive=progressive,
                                                            optimize=True)
        assert load_image(path).width == 2000
