"""The clinician's edits survive closing the app, and never attach to a different photo."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from PIL import Image

from lesionviewer.io import sidecar as sidecar_module
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.sidecar import CaseSidecar, CaseStatus, delete_sidecar, load_sidecar, save_sidecar, sidecar_path_for


@pytest.fixture
def photo(tmp_path):
    folder = tmp_path / "clinic"
    folder.mkdir()
    path = folder / "läsion_日本.jpg"
    Image.new("RGB", (12, 8), (150, 100, 80)).save(path)
    return path


def _edited(photo, mask=True):
    edited = None
    if mask:
        edited = np.zeros((8, 12), bool)
        edited[2:6, 3:9] = True
    return CaseSidecar(
        image_file_name=photo.name,
        content_hash=content_hash(photo),
        model_id="lesionviewer-ddpm-s128@1a2b3c4d",
        edited_mask=edited,
        roi=(1, 2, 10, 5),
        edit_summary={"strokes": {"brush": 2}, "pixels_added": 24, "pixels_removed": 0},
        status=CaseStatus.IN_PROGRESS,
    )


def test_saved_next_to_the_photo_and_read_back(photo, tmp_path):
    path = save_sidecar(_edited(photo), photo, tmp_path / "fallback").path
    assert path == photo.with_name(photo.name + ".lesionviewer.json") == sidecar_path_for(photo)
    assert sorted(p.name for p in photo.parent.iterdir()) == sorted([photo.name, path.name])
    assert not (tmp_path / "fallback").exists()
    back = load_sidecar(photo, tmp_path / "fallback")
    np.testing.assert_array_equal(back.edited_mask, _edited(photo).edited_mask)
    assert back.roi == (1, 2, 10, 5)
    assert back.model_id == "lesionviewer-ddpm-s128@1a2b3c4d"
    assert back.edit_summary["pixels_added"] == 24
    assert back.status == CaseStatus.IN_PROGRESS == "in progress"
    assert back.saved_at.endswith("+00:00") and back.app_version
    assert back.image_file_name == photo.name and back.content_hash == content_hash(photo)


def test_absent_sidecar_is_none(photo, tmp_path):
    assert load_sidecar(photo, tmp_path / "fallback") is None
    assert load_sidecar(photo) is None


def test_photo_is_never_modified(photo):
    before = photo.read_bytes()
    save_sidecar(_edited(photo), photo)
    assert photo.read_bytes() == before


def test_unedited_case_has_no_mask_and_a_format_1_mask_file_is_removed(photo):
    save_sidecar(_edited(photo), photo)
    stale = photo.with_name(photo.name + ".lesionviewer-mask.png")  # left by lesionviewer 0.1
    stale.write_bytes(b"old")
    save_sidecar(_edited(photo, mask=False), photo)
    assert not stale.exists()
    back = load_sidecar(photo)
    assert back.edited_mask is None and back.roi == (1, 2, 10, 5)


def _refuse_writes_in(monkeypatch, folder):
    real = sidecar_module.atomic_write_bytes

    def read_only(path, data):
        if os.path.dirname(os.path.abspath(path)) == os.path.abspath(folder):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, data)

    monkeypatch.setattr(sidecar_module, "atomic_write_bytes", read_only)


def test_read_only_folder_uses_the_fallback_and_finds_it_again(photo, tmp_path, monkeypatch):
    fallback = tmp_path / "user data" / "sidecars"
    _refuse_writes_in(monkeypatch, photo.parent)
    path = save_sidecar(_edited(photo), photo, fallback).path
    assert path.parent == fallback and path == sidecar_path_for(photo, fallback)
    assert not sidecar_path_for(photo).exists()
    back = load_sidecar(photo, fallback)
    np.testing.assert_array_equal(back.edited_mask, _edited(photo).edited_mask)


def test_same_name_in_two_folders_gets_two_fallback_sidecars(tmp_path):
    a = tmp_path / "a" / "x.jpg"
    b = tmp_path / "b" / "x.jpg"
    assert sidecar_path_for(a, tmp_path / "fb") != sidecar_path_for(b, tmp_path / "fb")
    assert sidecar_path_for(a, tmp_path / "fb").name.endswith("_x.jpg.lesionviewer.json")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder_for_real(photo, tmp_path):
    photo.parent.chmod(0o555)
    try:
        path = save_sidecar(_edited(photo), photo, tmp_path / "fb").path
        assert path.parent == tmp_path / "fb"
        assert load_sidecar(photo, tmp_path / "fb") is not None
    finally:
        photo.parent.chmod(0o755)


def test_no_fallback_and_no_write_permission_raises(photo, monkeypatch):
    _refuse_writes_in(monkeypatch, photo.parent)
    with pytest.raises(OSError):
        save_sidecar(_edited(photo), photo)


def test_newest_of_two_places_wins(photo, tmp_path, monkeypatch):
    fallback = tmp_path / "fb"
    older = _edited(photo)
    older.status = CaseStatus.IN_PROGRESS
    save_sidecar(older, photo, fallback)
    with monkeypatch.context() as m:
        _refuse_writes_in(m, photo.parent)
        newer = _edited(photo)
        newer.status = CaseStatus.REVIEWED
        save_sidecar(newer, photo, fallback)
    assert load_sidecar(photo, fallback).status == "reviewed"


def test_changed_photo_ignores_old_edits_with_a_warning(photo, caplog):
    save_sidecar(_edited(photo), photo)
    Image.new("RGB", (12, 8), (10, 200, 10)).save(photo)  # replaced by another picture
    with caplog.at_level(logging.WARNING):
        assert load_sidecar(photo) is None
    assert "changed" in caplog.text


def test_delete_sidecar_discards_edits(photo, tmp_path):
    save_sidecar(_edited(photo), photo)
    delete_sidecar(photo, tmp_path / "fb")
    assert load_sidecar(photo, tmp_path / "fb") is None
    assert list(photo.parent.iterdir()) == [photo]
