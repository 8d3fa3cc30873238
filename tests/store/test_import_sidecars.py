"""Importing sidecar autosaves: everything in them reaches the store, twice imports once, and
the files are only read."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import store_helpers as h  # noqa: E402

from lesionviewer.io.hashing import content_hash
from lesionviewer.io.sidecar import (CONFLICT_INFIX, CaseSidecar, save_sidecar,
                                     sidecar_path_for, write_sidecar_file)
from lesionviewer.store import CaseStore, ReviewState


def _sidecar(photo: Path, mask, status="in progress", **extra) -> Path:
    record = CaseSidecar(image_file_name=photo.name, content_hash=content_hash(photo),
                         model_id="tiny@1", edited_mask=mask, roi=(1, 2, 30, 20), threshold=0.4,
                         edit_summary={"strokes": 3}, status=status,
                         analysis_summary={"ged": 0.12, "malignancy_probability": 0.4}, **extra)
    return save_sidecar(record, photo).path


@pytest.fixture
def folder(tmp_path):
    a, b = h.photo(tmp_path / "set", "a.png", 1), h.photo(tmp_path / "set" / "sub", "b.png", 2)
    _sidecar(a, h.box(5, 5, 20, 30))
    _sidecar(b, h.box(0, 0, 10, 10), status="reviewed")
    return tmp_path / "set"


def test_import_keeps_mask_analysis_state_and_record_and_runs_once(store_url, folder):
    before = {p: p.read_bytes() for p in folder.rglob("*.json")}
    with CaseStore.open(store_url, user="alice") as store:
        report = store.import_sidecars([folder])
        assert len(report.imported) == 2 and not report.problems and not report.skipped
        a = store.case_for_photo(folder / "a.png")
        b = store.case_for_photo(folder / "sub" / "b.png")
        assert a.state is ReviewState.CORRECTED  # the edit outranks "in progress"
        assert b.state is ReviewState.SIGNED_OFF and b.state_by == "alice"
        version = store.latest_masks(a.id)["alice"]
        np.testing.assert_array_equal(version.mask, h.box(5, 5, 20, 30))
        assert version.source == "sidecar"
        row = next(r for r in store.review_queue() if r.case_id == a.id)
        assert row.ged == pytest.approx(0.12) and row.malignancy == pytest.approx(0.4)
        record = next(e for e in store.audit(a.id) if e["action"] == "import sidecar")["detail"]
        assert record["record"]["roi"] == [1, 2, 30, 20]
        assert record["record"]["threshold"] == 0.4
        assert record["record"]["edit_summary"] == {"strokes": 3}
        assert record["record"]["save_id"] and record["record"]["writer"]["pid"]

        again = store.import_sidecars([folder, folder / "a.png"])
        assert not again.imported and len(again.skipped) == 2
        assert len(store.history(a.id)) == 1
    assert {p: p.read_bytes() for p in folder.rglob("*.json")} == before  # only read


def test_conflict_copies_become_versions_and_bad_files_are_reported(store_url, tmp_path):
    photo = h.photo(tmp_path, "c.png", 3)
    first = _sidecar(photo, h.box(0, 0, 5, 5))
    other = CaseSidecar(image_file_name=photo.name, content_hash=content_hash(photo),
                        edited_mask=h.box(0, 0, 8, 8))
    copy = write_sidecar_file(other, first.with_name(
        f"c.png{CONFLICT_INFIX}20261129T120000Z.json"))
    damaged_photo = h.photo(tmp_path, "d.png", 4)
    sidecar_path_for(damaged_photo).write_text("{ not json")
    changed = h.photo(tmp_path, "e.png", 5)
    _sidecar(changed, h.box(1, 1, 2, 2))
    h.photo(tmp_path, "e.png", 6)  # the photo replaced since
    with CaseStore.open(store_url, user="alice") as store:
        report = store.import_sidecars([photo, damaged_photo, changed])
        assert set(report.imported) == {first, copy}
        problems = dict(report.problems)
        assert "not valid JSON" in problems[sidecar_path_for(damaged_photo)]
        assert "has changed" in problems[sidecar_path_for(changed)]
        case = store.case_for_photo(photo)
        assert [v.mask.sum() for v in store.history(case.id)] == [25, 64]  # in saving order
    assert sidecar_path_for(damaged_photo).read_text() == "{ not json"


def test_an_annotator_cannot_sign_off_by_importing(store_url, folder):
    CaseStore.open(store_url, user="alice").close()
    with CaseStore.open(store_url, user="bob") as bob:
        report = bob.import_sidecars([folder])
        b = bob.case_for_photo(folder / "sub" / "b.png")
        assert b.state is ReviewState.CORRECTED
        assert any("reviewer" in note for _, note in report.notes)
