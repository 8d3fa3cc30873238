"""What lands in the export folder: right names, right sizes, right values, no patient metadata."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from lesionviewer.io.atomic import atomic_write_bytes, write_json_atomic
from lesionviewer.io.export import (
    VARIANCE_SCALE,
    export_case,
    overlay_image,
    safe_case_stem,
    save_map_png16,
    save_mask_png,
)
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.images import load_image, load_mask


def _read16(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _photo(height=24, width=32):
    rng = np.random.default_rng(3)
    return rng.integers(60, 200, (height, width, 3), dtype=np.uint8)


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # normal permissions, not mkstemp's


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "mask.png"
    target.write_bytes(b"previous")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"half")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["mask.png"]


def test_json_is_strict_utf8_with_nan_as_null(tmp_path):
    path = write_json_atomic(tmp_path / "x.json", {"ita": float("nan"), "n": np.int64(3),
                                                    "f": np.float32(0.5), "name": "läsion_日本", "t": (1, 2)})
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "läsion_日本" in text
    assert json.loads(text) == {"ita": None, "n": 3, "f": 0.5, "name": "läsion_日本", "t": [1, 2]}


def test_mask_png_is_0_255_same_size(tmp_path):
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    save_mask_png(tmp_path / "m.png", mask)
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "L" and im.size == (7, 5)
        levels = np.asarray(im)
    assert set(np.unique(levels)) == {0, 255}
    np.testing.assert_array_equal(levels == 255, mask)


def test_probability_and_variance_maps_use_the_documented_scale(tmp_path):
    probability = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    save_map_png16(tmp_path / "p.png", probability)
    stored = _read16(tmp_path / "p.png")
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored, [[0, 16384, 32768, 65535]])  # round(p * 65535)
    variance = np.array([[0.0, 0.0625, 0.25, 0.3]], np.float32)
    save_map_png16(tmp_path / "v.png", variance, scale=VARIANCE_SCALE)
    back = _read16(tmp_path / "v.png") / 65535 / VARIANCE_SCALE
    np.testing.assert_allclose(back, [[0.0, 0.0625, 0.25, 0.25]], atol=1e-5)  # clipped at 0.25


def test_overlay_tints_the_lesion_outlines_it_and_keeps_the_rest(tmp_path):
    rgb = np.full((40, 40, 3), 120, np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    out = overlay_image(rgb, mask)
    assert out.shape == rgb.shape
    np.testing.assert_array_equal(out[:8], rgb[:8])  # away from the lesion: untouched
    assert out[20, 20, 2] > 120 and out[20, 20, 0] < 120  # tinted toward cyan
    assert tuple(out[10, 20]) == (255, 255, 0)  # outline on the border pixel


def test_export_case_writes_every_file_at_the_original_size(tmp_path, analysis):
    rgb = _photo()
    mask = analysis.consensus_mask.copy()
    mask[0, 0] = True  # one edited pixel
    source = tmp_path / "ISIC_0000001.jpg"
    Image.fromarray(rgb).save(source)
    paths = export_case(tmp_path / "out", "ISIC_0000001", rgb, mask, analysis,
                        {"strokes": {"brush": 1}, "pixels_added": 1}, source_path=source)
    assert {k: p.name for k, p in paths.items()} == {
        "mask": "ISIC_0000001_mask.png",
        "probability": "ISIC_0000001_probability.png",
        "variance": "ISIC_0000001_variance.png",
        "overlay": "ISIC_0000001_overlay.png",
        "json": "ISIC_0000001.json",
    }
    np.testing.assert_array_equal(load_mask(paths["mask"]), mask)
    np.testing.assert_allclose(_read16(paths["probability"]) / 65535, analysis.consensus_probability, atol=1e-5)
    np.testing.assert_allclose(_read16(paths["variance"]) / 65535 / 4, analysis.variance, atol=1e-5)
    assert load_image(paths["overlay"]).rgb.shape == rgb.shape
    record = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert record["model_id"] == analysis.model_id
    assert record["settings"] == analysis.settings
    assert record["ged"] == pytest.approx(0.125)
    assert record["malignancy_probability"] == pytest.approx(0.42)
    assert record["skin_tone"] == {"ita_degrees": 41.5, "group": "light", "skin_pixels": analysis.skin_tone.skin_pixels}
    assert record["edit_summary"] == {"strokes": {"brush": 1}, "pixels_added": 1}
    assert record["source"] == {"file_name": "ISIC_0000001.jpg", "sha256": content_hash(source)}
    assert record["app_version"]
    assert record["mask"]["lesion_pixels"] == int(mask.sum())
    assert record["mask"]["pixels_differing_from_model"] == 1
    assert record["files"]["mask"] == "ISIC_0000001_mask.png"


def test_isic_naming_and_export_without_analysis(tmp_path):
    rgb = _photo()
    mask = np.zeros(rgb.shape[:2], bool)
    paths = export_case(tmp_path, "ISIC_0000002", rgb, mask, None, None, isic_naming=True)
    assert sorted(paths) == ["json", "mask", "overlay"]
    assert paths["mask"].name == "ISIC_0000002_segmentation.png"
    record = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert record["analysis"] is None and record["source"]["file_name"] is None


def test_export_refuses_mismatched_shapes(tmp_path, analysis):
    rgb = _photo()
    with pytest.raises(ValueError):
        export_case(tmp_path, "c", rgb, np.zeros((5, 5), bool), None, None)
    with pytest.raises(ValueError):
        export_case(tmp_path, "c", _photo(30, 30), np.zeros((30, 30), bool), analysis, None)


def test_case_id_cannot_escape_the_export_folder(tmp_path):
    assert safe_case_stem("../../etc/passwd") == "_.._etc_passwd"
    assert safe_case_stem("läsion_日本") == "läsion_日本"
    rgb = _photo()
    paths = export_case(tmp_path / "out", "a/b", rgb, np.zeros(rgb.shape[:2], bool), None, None)
    assert all(p.parent == tmp_path / "out" for p in paths.values())


def test_gps_exif_in_the_photo_never_reaches_the_exports(tmp_path, analysis):
    rgb = _photo()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "PatientPhone 12"
    gps = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    exif[0x8825] = gps
    source = tmp_path / "visit.jpg"
    Image.fromarray(rgb).save(source, exif=exif.tobytes(), quality=95)
    with Image.open(source) as im:
        assert im.getexif().get_ifd(0x8825), "test photo must carry GPS"
    loaded = load_image(source)
    paths = export_case(tmp_path / "out", "visit", loaded.rgb, analysis.consensus_mask, analysis, None,
                        source_path=source)
    for kind, path in paths.items():
        data = path.read_bytes()
        assert b"PatientPhone" not in data and b"PhoneMaker" not in data, kind
        if path.suffix == ".png":
            assert b"eXIf" not in data and b"tEXt" not in data and b"iTXt" not in data, kind
            with Image.open(path) as im:
                assert not im.getexif(), kind
    assert "GPS" not in paths["json"].read_text(encoding="utf-8")


# --- one result set per photo, whatever the names (issue 12, items 6 and 8) --------------------

def test_output_ids_mirror_folders_under_their_common_parent(tmp_path):
    from lesionviewer.io.naming import output_ids

    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    assert output_ids([(day1 / "case.jpg", day1), (day2 / "case.jpg", day2)]) == ["day1/case", "day2/case"]
    assert output_ids([(day1 / "sub" / "a.jpg", day1), (day1 / "b.png", day1)]) == ["sub/a", "b"]
    # A photo given on its own counts from its folder: the same names as before for one folder.
    assert output_ids([(day1 / "a.jpg", day1), (day1 / "b.jpg", day1)]) == ["a", "b"]


def test_output_ids_tell_apart_one_stem_with_two_suffixes_in_input_order(tmp_path):
    from lesionviewer.io.naming import output_ids

    photos = [(tmp_path / n, tmp_path) for n in ("case.jpg", "case.png", "Case.JPG", "case_jpg.tif", "x.jpg")]
    ids = output_ids(photos)
    assert ids == ["case_jpg-2", "case_png", "Case_jpg-3", "case_jpg", "x"]
    assert len({i.casefold() for i in ids}) == len(ids)  # distinct on case-blind disks too
    assert output_ids(photos) == ids  # the same every run


def test_a_name_too_long_for_the_disk_is_shortened_with_a_hash(tmp_path, analysis):
    from lesionviewer.io.naming import MAX_NAME_BYTES, fit_name

    long_a, long_b = "a" * 240, "a" * 239 + "b"
    assert fit_name("short") == "short"
    assert fit_name(long_a) == fit_name(long_a) != fit_name(long_b)
    assert fit_name("ä" * 200).encode() and len(fit_name("ä" * 200).encode()) <= MAX_NAME_BYTES - 50
    rgb = _photo()
    paths = export_case(tmp_path / "out", long_a, rgb, analysis.consensus_mask, analysis, None,
                        isic_naming=True)  # "_segmentation.png" on 240 characters: 257 bytes
    assert all(p.is_file() and len(p.name.encode()) <= MAX_NAME_BYTES for p in paths.values())
    assert paths["mask"].name == fit_name(long_a) + "_segmentation.png"


def test_a_full_disk_mid_case_leaves_no_partial_set_and_keeps_the_earlier_one(tmp_path, analysis,
                                                                               monkeypatch):
    import lesionviewer.io.fileset as fileset

    rgb = _photo()
    out = tmp_path / "out"
    first = export_case(out, "case", rgb, analysis.consensus_mask, analysis, None)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_write, calls = fileset._write_all, []

    def write_until_full(fd, data):
        calls.append(len(data))
        if len(calls) == 3:  # the variance map: after the mask and the probability map
            raise OSError(28, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(fileset, "_write_all", write_until_full)
    with pytest.raises(OSError, match="No space"):
        export_case(out, "case", rgb, ~analysis.consensus_mask, analysis, None)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temp files either
    calls.clear()
    with pytest.raises(OSError):
        export_case(out / "new", "other", rgb, analysis.consensus_mask, analysis, None)
    assert not (out / "new").exists()  # the folder the failed set made is gone too
    assert set(first) == {"mask", "probability", "variance", "overlay", "json"}


def test_a_result_set_never_writes_one_name_twice(tmp_path):
    from lesionviewer.io.fileset import FileSet

    with pytest.raises(ValueError, match="twice"):
        with FileSet() as files:
            files.write(tmp_path / "a.png", b"1")
            files.write(tmp_path / "a.png", b"2")
    assert list(tmp_path.iterdir()) == []


def test_coco_refuses_two_images_with_one_file_name():
    from lesionviewer.io.coco import coco_from_cases

    mask = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="listed twice"):
        coco_from_cases([("day1/case.jpg", mask), ("day2/case.jpg", mask), ("day1/case.jpg", mask)])


def test_a_withheld_malignancy_figure_is_in_no_exported_file(tmp_path, analysis):
    """The app refuses to show a malignancy figure for an out-of-distribution photo or an
    uncertain mask: the exported JSON must not carry the number either, only the reason."""
    import dataclasses

    withheld = dataclasses.replace(analysis, malignancy_range=(0.2, 0.7), ood=True, ood_score=31.0,
                                   malignancy_withheld="photo unlike the training images")
    rgb = _photo()
    paths = export_case(tmp_path / "out", "ISIC_0000001", rgb, withheld.consensus_mask, withheld, {})
    record = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert record["malignancy_probability"] is None
    assert record["analysis"]["malignancy_probability"] is None
    assert record["analysis"]["malignancy_range"] is None
    assert record["analysis"]["malignancy_withheld"] == "photo unlike the training images"
    assert record["analysis"]["ood"] is True
    assert withheld.summary()["malignancy_probability"] == pytest.approx(0.42)  # evaluation keeps it
