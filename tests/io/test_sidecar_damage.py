"""A sidecar that cannot be read is reported, kept aside and never overwritten (issue 12, item 4).

Damage of every kind (cut-short or garbled JSON, another program's JSON, a format-1 mask file
deleted or altered, a format-2 mask altered) is moved aside as ``<name>.damaged-<time>`` with
its bytes intact; a newer format stays where it is, untouched, and saves go to a copy.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from PIL import Image

from lesionviewer.io import sidecar as sidecar_module
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.sidecar import (CaseSidecar, SidecarProblem, load_sidecar, save_sidecar,
                                     sidecar_path_for)
from lesionviewer.io.sidecar_record import decode

DAMAGED_NAME = re.compile(r"\.lesionviewer\.json\.damaged-\d{8}T\d{6}Z(-\d+)?$")


@pytest.fixture
def photo(tmp_path):
    folder = tmp_path / "clinic"
    folder.mkdir()
    path = folder / "case 1.jpg"
    Image.new("RGB", (12, 8), (150, 100, 80)).save(path)
    return path


def _sidecar(photo, fill=True) -> CaseSidecar:
    mask = np.zeros((8, 12), bool)
    mask[2:6, 3:9] = fill
    return CaseSidecar(photo.name, content_hash(photo), "model@1", mask, status="edited")


def _write_format_1(photo, mask) -> None:
    """The two files lesionviewer 0.1 wrote (record + mask PNG)."""
    from lesionviewer.io.export import encode_png
    from lesionviewer.io.hashing import bytes_hash

    png = encode_png(mask.astype(np.uint8) * 255)
    photo.with_name(photo.name + ".lesionviewer-mask.png").write_bytes(png)
    record = {"format": "lesionviewer-sidecar", "format_version": 1,
              "image_file_name": photo.name, "content_hash": content_hash(photo),
              "model_id": "m@1", "roi": None, "edit_summary": {"total_strokes": 3},
              "status": "edited", "saved_at": "2026-01-02T03:04:05.000+00:00",
              "app_version": "0.1.0",
              "mask": {"file_name": photo.name + ".lesionviewer-mask.png",
                       "sha256": bytes_hash(png), "height": mask.shape[0],
                       "width": mask.shape[1]}}
    sidecar_path_for(photo).write_text(json.dumps(record))


def _damage(photo, kind: str) -> None:
    json_path = sidecar_path_for(photo)
    if kind.startswith("v1"):
        mask = np.zeros((8, 12), bool)
        mask[1:4, 1:4] = True
        _write_format_1(photo, mask)
        mask_png = photo.with_name(photo.name + ".lesionviewer-mask.png")
        if kind == "v1_mask_deleted":
            mask_png.unlink()
        else:
            Image.fromarray(np.full((8, 12), 255, np.uint8)).save(mask_png)
        return
    save_sidecar(_sidecar(photo), photo)
    data = json_path.read_bytes()
    if kind == "truncated":
        json_path.write_bytes(data[: len(data) // 2])
    elif kind == "garbled":
        json_path.write_bytes(bytes(range(256)) * 4)
    elif kind == "empty":
        json_path.write_bytes(b"")
    elif kind == "not_ours":
        json_path.write_text(json.dumps({"hello": "world"}))
    elif kind == "fields_wrong":
        record = json.loads(data)
        record["roi"] = "left half"
        json_path.write_text(json.dumps(record))
    elif kind == "mask_altered":
        record = json.loads(data)
        png = bytearray(base64.b64decode(record["mask"]["data"]))
        png[-20] ^= 0xFF
        record["mask"]["data"] = base64.b64encode(bytes(png)).decode()
        json_path.write_text(json.dumps(record))
    else:
        raise AssertionError(kind)


DAMAGE = ["truncated", "garbled", "empty", "not_ours", "fields_wrong", "mask_altered",
          "v1_mask_deleted", "v1_mask_altered"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_sidecar_is_reported_and_kept_aside(photo, kind):
    _damage(photo, kind)
    json_path = sidecar_path_for(photo)
    before = json_path.read_bytes()
    problems: list[SidecarProblem] = []
    assert load_sidecar(photo, problems=problems) is None
    assert [p.kind for p in problems] == ["damaged"]
    problem = problems[0]
    assert DAMAGED_NAME.search(problem.kept_as.name), problem.kept_as
    assert problem.kept_as.read_bytes() == before  # the evidence, byte for byte
    assert not json_path.exists()
    message = problem.message()
    assert "\n" not in message and "case 1.jpg" in message and problem.kept_as.name in message
    assert "could not be read" in message

    save_sidecar(_sidecar(photo, fill=False), photo)  # the next autosave...
    assert problem.kept_as.read_bytes() == before  # ...never touches what was kept
    assert load_sidecar(photo).edited_mask.sum() == 0


@pytest.mark.parametrize("kind", ["truncated", "garbled", "v1_mask_deleted"])
def test_a_save_over_damage_it_has_not_read_moves_it_aside_first(photo, kind):
    _damage(photo, kind)
    before = sidecar_path_for(photo).read_bytes()
    outcome = save_sidecar(_sidecar(photo), photo)
    assert outcome.conflict is None and outcome.path == sidecar_path_for(photo)
    [problem] = outcome.problems
    assert problem.kind == "damaged" and problem.kept_as.read_bytes() == before
    assert load_sidecar(photo).edited_mask.sum() == 24


def _write_newer(photo) -> bytes:
    save_sidecar(_sidecar(photo), photo)
    json_path = sidecar_path_for(photo)
    record = json.loads(json_path.read_text())
    record.update(format_version=99, app_version="7.0.0", mask={"encoding": "zstd-rle"})
    json_path.write_text(json.dumps(record))
    return json_path.read_bytes()


def test_a_newer_format_is_refused_and_never_overwritten(photo, tmp_path):
    before = _write_newer(photo)
    problems: list[SidecarProblem] = []
    assert load_sidecar(photo, tmp_path / "fb", problems=problems) is None
    [problem] = problems
    assert problem.kind == "newer" and problem.kept_as is None
    assert "made by a newer lesionviewer" in problem.message()
    assert "7.0.0" in problem.message() and "\n" not in problem.message()

    outcome = save_sidecar(_sidecar(photo), photo, tmp_path / "fb")
    assert sidecar_path_for(photo).read_bytes() == before
    assert "newer lesionviewer" in outcome.conflict
    assert outcome.path.parent == photo.parent
    assert outcome.path.name.startswith("case 1.jpg.lesionviewer-conflict-")
    copy = decode(outcome.path, outcome.path.read_bytes())  # a complete sidecar of its own
    assert copy.edited_mask.sum() == 24
    assert not list(photo.parent.glob("*.damaged-*"))


def test_edits_of_a_photo_that_has_changed_are_kept_aside(photo):
    save_sidecar(_sidecar(photo), photo)
    Image.new("RGB", (12, 8), (10, 200, 10)).save(photo)  # replaced by another picture
    problems: list[SidecarProblem] = []
    assert load_sidecar(photo, problems=problems) is None
    [problem] = problems
    assert problem.kind == "photo_changed" and ".photo-changed-" in problem.kept_as.name
    assert "has changed" in problem.message()


def test_damage_in_a_folder_that_cannot_be_written_stays_put_and_saves_go_elsewhere(
        photo, tmp_path, monkeypatch):
    _damage(photo, "truncated")
    before = sidecar_path_for(photo).read_bytes()

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sidecar_module, "_move_aside", read_only)
    monkeypatch.setattr(sidecar_module, "lock_file", read_only)
    problems: list[SidecarProblem] = []
    assert load_sidecar(photo, tmp_path / "fb", problems=problems) is None
    assert problems[0].kept_as is None and "will not be overwritten" in problems[0].message()
    monkeypatch.undo()
    real_save_at = sidecar_module._save_at
    monkeypatch.setattr(sidecar_module, "_save_at", lambda s, p: (
        read_only() if p.parent == photo.parent else real_save_at(s, p)))
    outcome = save_sidecar(_sidecar(photo), photo, tmp_path / "fb")
    assert outcome.path.parent == tmp_path / "fb"
    assert sidecar_path_for(photo).read_bytes() == before


def test_a_photo_name_near_the_length_limit_still_gets_its_sidecar_and_marker(tmp_path):
    """A 244-character photo name leaves no room for '.lesionviewer.json' (255-byte limit):
    the sidecar and the open-case marker use a shortened, hashed name, and reload."""
    from lesionviewer.io import presence

    photo = tmp_path / ("x" * 240 + ".jpg")
    Image.new("RGB", (12, 8), (150, 100, 80)).save(photo)
    save_sidecar(_sidecar(photo), photo)
    assert len(sidecar_path_for(photo).name.encode()) <= 200
    loaded = load_sidecar(photo)
    assert loaded is not None and loaded.edited_mask.sum() == 24
    assert presence.claim(photo, "me") is None
    assert presence.presence_path(photo).exists()
    presence.release(photo, "me")
