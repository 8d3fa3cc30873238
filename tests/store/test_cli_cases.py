"""`lesionviewer cases import / status / export` on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from sqlalchemy.engine import make_url

from lesionviewer.cli import main
from lesionviewer.io.coco import rle_decode
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.images import load_mask
from lesionviewer.io.sidecar import save_sidecar
from lesionviewer.io.sidecar_record import CaseSidecar
from lesionviewer.store import CaseStore
from lesionviewer.store.states import ReviewState

H, W = 24, 32


def disc(cx: int, r: int = 7) -> np.ndarray:
    """HxW bool disc centred at (cx, H/2)."""
    yy, xx = np.mgrid[0:H, 0:W]
    return np.hypot(yy - H / 2, xx - cx) < r


def write_photo(path, seed: int):
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    return path


@pytest.fixture
def folder(tmp_path):
    """Three photos in the shared data format's layout, one autosave, one analysis JSON."""
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(3):
        write_photo(root / f"ISIC_000000{i}.jpg", i)
    with open(root / "labels.csv", "w", newline="") as f:
        f.write("id,source,diagnosis,malignant\nISIC_0000000,test,nevus,0\nISIC_0000001,test,melanoma,1\n")
    photo = root / "ISIC_0000001.jpg"
    save_sidecar(CaseSidecar(image_file_name=photo.name, content_hash=content_hash(photo),
                             edited_mask=disc(12), status="in progress"), photo)
    (root / "out").mkdir()
    record = {"id": "ISIC_0000002", "source": "ISIC_0000002.jpg",
              "content_sha256": content_hash(root / "ISIC_0000002.jpg"),
              "model_id": "test-model@0", "settings": {"samples": 4}, "ged": 0.21,
              "ged_level": "high", "malignancy_probability": 0.4, "malignancy_range": [0.2, 0.6]}
    (root / "out" / "ISIC_0000002_analysis.json").write_text(json.dumps(record))
    return root


def cases(*argv):
    return main(["cases", *argv])


def test_import_is_complete_and_idempotent(store_url, folder, capsys):
    assert cases("--db", store_url, "--user", "alice", "import", str(folder)) == 0
    first = capsys.readouterr().out
    assert "3 new case(s)" in first and "analyses: 1 recorded" in first
    with CaseStore.open(store_url, user="alice") as store:
        by_name = {store.get_case(r.case_id).photo_uri.rsplit("/", 1)[-1]: r.case_id
                   for r in store.review_queue(order="state")}
        assert set(by_name) == {"ISIC_0000000.jpg", "ISIC_0000001.jpg", "ISIC_0000002.jpg"}
        assert store.get_case(by_name["ISIC_0000000.jpg"]).labels["diagnosis"] == "nevus"
        masks = store.latest_masks(by_name["ISIC_0000001.jpg"])
        assert len(masks) == 1 and np.array_equal(next(iter(masks.values())).mask, disc(12))
        assert store.get_case(by_name["ISIC_0000002.jpg"]).state is ReviewState.ANALYSED
        versions_before = len(store.history(by_name["ISIC_0000001.jpg"]))
        audit_before = len(store.audit(limit=10_000))

    # --db after the sub-command's name works too; a second import adds nothing
    assert cases("import", str(folder), "--db", store_url, "--user", "alice") == 0
    second = capsys.readouterr().out
    assert "0 new case(s), 3 already" in second and "0 recorded, 1 already" in second
    with CaseStore.open(store_url, user="alice") as store:
        assert sum(store.counts().values()) == 3
        assert len(store.history(by_name["ISIC_0000001.jpg"])) == versions_before
        assert len([a for a in store.audit(limit=10_000) if a["action"] != "open"]) <= audit_before


def test_import_names_what_it_could_not_use(store_url, folder, tmp_path, capsys):
    (folder / "broken.jpg").write_bytes(b"not a photo")
    stray = tmp_path / "stray_analysis.json"
    stray.write_text(json.dumps({"content_sha256": "0" * 64, "model_id": "m"}))
    code = cases("--db", store_url, "import", str(folder), str(stray), str(tmp_path / "missing"))
    err = capsys.readouterr().err
    assert code == 1
    assert "missing: no such file or folder" in err and "stray_analysis.json" in err
    assert all(line.startswith("lesionviewer cases: ") for line in err.strip().splitlines())


def _reviewed_store(store_url, folder):
    """Cases with two raters' masks on one photo (signed off) and one rater on another."""
    with CaseStore.open(store_url, user="rev") as store:  # first user: reviewer
        a = store.add_case(folder / "ISIC_0000000.jpg", labels={"diagnosis": "nevus", "malignant": "0"})
        b = store.add_case(folder / "ISIC_0000001.jpg")
        store.add_case(folder / "ISIC_0000002.jpg")  # no mask: left out of exports
        store.save_mask(a.id, disc(10), None)
    for user, cx in (("alice", 12), ("bob", 14)):
        with CaseStore.open(store_url, user=user) as store:
            store.save_mask(a.id if user == "alice" else b.id, disc(cx), None)
    with CaseStore.open(store_url, user="rev") as store:
        store.set_state(a.id, ReviewState.SIGNED_OFF, comment="fine")
    return a, b


def test_export_isic_writes_the_shared_data_format(store_url, folder, tmp_path, capsys):
    from lesionviewer.training.cases import read_cases

    a, b = _reviewed_store(store_url, folder)
    out = tmp_path / "dataset"
    assert cases("--db", store_url, "export", "--out", str(out), "--state", "signed-off") == 0
    assert "1 case(s) in state 'signed off'" in capsys.readouterr().out
    assert (out / "ISIC_0000000.jpg").read_bytes() == (folder / "ISIC_0000000.jpg").read_bytes()
    consensus = load_mask(out / "ISIC_0000000_mask.png")
    with CaseStore.open(store_url, user="rev") as store:
        expected = store.agreement(a.id).consensus
    assert np.array_equal(consensus, expected)
    assert np.array_equal(load_mask(out / "raters" / "alice" / "ISIC_0000000_mask.png"), disc(12))
    assert np.array_equal(load_mask(out / "raters" / "rev" / "ISIC_0000000_mask.png"), disc(10))
    rows = list(csv.DictReader(open(out / "labels.csv", encoding="utf-8")))
    assert len(rows) == 1
    row = rows[0]
    assert (row["id"], row["diagnosis"], row["review_state"], row["signed_off_by"], row["raters"]) == \
        ("ISIC_0000000", "nevus", "signed off", "rev", "alice;rev")
    # lesionviewer's own reader sees exactly the exported case, with its consensus mask
    read = read_cases(out)
    assert [(c.id, c.mask_path.name, c.diagnosis) for c in read] == [("ISIC_0000000", "ISIC_0000000_mask.png", "nevus")]

    every = tmp_path / "all"
    assert cases("--db", store_url, "export", "--out", str(every)) == 0
    text = capsys.readouterr().out
    assert "2 case(s) in any state" in text and "1 case(s) left out" in text
    assert np.array_equal(load_mask(every / "ISIC_0000001_mask.png"), disc(14))  # one rater: theirs


def test_export_coco(store_url, folder, tmp_path, capsys):
    a, _ = _reviewed_store(store_url, folder)
    out = tmp_path / "coco"
    assert cases("--db", store_url, "export", "--out", str(out), "--format", "coco") == 0
    dataset = json.loads((out / "annotations.json").read_text())
    images = {i["file_name"]: i for i in dataset["images"]}
    assert set(images) == {"ISIC_0000000.jpg", "ISIC_0000001.jpg"}
    assert images["ISIC_0000000.jpg"]["review_state"] == "signed off"
    assert sorted(images["ISIC_0000000.jpg"]["raters"]) == ["alice", "rev"]
    with CaseStore.open(store_url, user="rev") as store:
        expected = store.agreement(a.id).consensus
    annotation = next(x for x in dataset["annotations"] if x["image_id"] == images["ISIC_0000000.jpg"]["id"])
    assert np.array_equal(rle_decode(annotation["segmentation"]), expected)
    bob = json.loads((out / "raters" / "bob.json").read_text())
    assert [i["file_name"] for i in bob["images"]] == ["ISIC_0000001.jpg"]
    assert not list(out.glob("*_mask.png"))


def test_export_is_all_or_nothing(store_url, folder, tmp_path, capsys):
    _reviewed_store(store_url, folder)
    (folder / "ISIC_0000001.jpg").unlink()  # the second case's photo is gone
    out = tmp_path / "dataset"
    assert cases("--db", store_url, "export", "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ISIC_0000001.jpg" in err[0]
    assert not out.exists() or not any(out.rglob("*"))


def test_status_counts_states_and_raters(store_url, folder, capsys):
    _reviewed_store(store_url, folder)
    assert cases("--db", store_url, "--user", "rev", "status") == 0
    out = capsys.readouterr().out
    assert "cases: 3" in out and "user: rev (reviewer)" in out
    lines = dict(line.strip().rsplit(None, 1) for line in out.splitlines() if line.startswith("  "))
    assert lines == {"new": "1", "analysed": "0", "in review": "0", "corrected": "1", "signed off": "1"}
    assert "raters: 3" in out and "alice (1 case(s))" in out


def test_errors_are_one_line(tmp_path, capsys):
    assert cases("--db", "nonsense://", "status") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lesionviewer cases: ")
    with pytest.raises(SystemExit):
        cases("--db", f"sqlite:///{tmp_path}/x.sqlite", "export", "--out", str(tmp_path / "o"), "--format", "tiff")
    capsys.readouterr()
    assert cases("--db", f"sqlite:///{tmp_path}/x.sqlite", "export", "--out", str(tmp_path / "o"),
                 "--state", "approved") == 2
    assert "unknown review state" in capsys.readouterr().err


def test_export_of_nothing_writes_nothing(store_url, folder, tmp_path, capsys):
    assert cases("--db", store_url, "import", str(folder)) == 0
    out = tmp_path / "dataset"
    assert cases("--db", store_url, "export", "--out", str(out), "--state", "signed off") == 2
    assert "no case in state 'signed off' has a mask" in capsys.readouterr().err
    assert not out.exists()


def test_the_apps_saved_store_and_user_are_the_defaults(store_url, backend, folder, _private_user_folders,
                                                        capsys):
    config = _private_user_folders / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.json").write_text(json.dumps({"db_url": store_url, "user_name": "dr who"}))
    assert cases("import", str(folder)) == 0
    capsys.readouterr()
    assert cases("status") == 0
    out = capsys.readouterr().out
    # the saved user name is for one desk; a team store records the URL's database login
    user = "dr who" if backend == "sqlite" else make_url(store_url).username
    assert "cases: 3" in out and f"user: {user} (reviewer)" in out


def test_grant_needs_a_reviewer(store_url, folder, capsys):
    assert cases("--db", store_url, "--user", "lead", "status") == 0  # first user: reviewer
    assert cases("--db", store_url, "--user", "ann", "grant", "bob", "reviewer") == 2
    assert "only a reviewer may grant" in capsys.readouterr().err
    assert cases("--db", store_url, "--user", "lead", "grant", "ann", "reviewer") == 0
    capsys.readouterr()
    assert cases("--db", store_url, "--user", "ann", "status") == 0
    assert "user: ann (reviewer)" in capsys.readouterr().out


def test_import_takes_the_autosave_of_a_photo_in_a_read_only_folder(store_url, folder, _private_user_folders, capsys):
    """The app keeps the autosave of a photo whose folder refuses writes in the user data
    folder (sidecars/); importing the photo takes that one in too."""
    from lesionviewer.io.sidecar import sidecar_path_for, write_sidecar_file

    photo = folder / "ISIC_0000002.jpg"
    fallback = sidecar_path_for(photo, _private_user_folders / "data" / "sidecars")
    fallback.parent.mkdir(parents=True)
    write_sidecar_file(CaseSidecar(image_file_name=photo.name, content_hash=content_hash(photo),
                                   edited_mask=disc(20), save_id="fallback-1"), fallback)
    assert cases("--db", store_url, "--user", "alice", "import", str(folder)) == 0
    assert "autosaved edits: 2 imported" in capsys.readouterr().out
    with CaseStore.open(store_url, user="alice") as store:
        case = store.case_for_photo(photo)
        assert np.array_equal(store.latest_masks(case.id)["alice"].mask, disc(20))


def test_export_replaces_an_earlier_export_and_refuses_other_folders(store_url, folder, tmp_path, capsys):
    a, _ = _reviewed_store(store_url, folder)
    out = tmp_path / "dataset"
    assert cases("--db", store_url, "export", "--out", str(out), "--state", "signed-off") == 0
    with CaseStore.open(store_url, user="rev") as store:  # reopened: no longer signed off
        store.set_state(a.id, ReviewState.IN_REVIEW, comment="look again")
    with CaseStore.open(store_url, user="rev") as store:
        b = store.case_for_photo(folder / "ISIC_0000001.jpg")
        store.set_state(b.id, ReviewState.SIGNED_OFF)
    assert cases("--db", store_url, "export", "--out", str(out), "--state", "signed-off") == 0
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == \
        ["ISIC_0000001.jpg", "ISIC_0000001_mask.png", "labels.csv"]
    assert not list(tmp_path.glob(".dataset*"))  # no staging or replaced folder left behind

    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me")
    capsys.readouterr()
    assert cases("--db", store_url, "export", "--out", str(mine)) == 2
    assert "holds other files" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["todo.txt"]
