"""The parts of `analyze --ray` that need no Ray: the message without it, the default path
never importing it, and which photos a re-run skips (by content hash, model and settings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import lesionviewer.cluster as cluster
from lesionviewer.cli import main
from lesionviewer.cluster.resume import previous_result
from lesionviewer.cluster.stages import ANALYSED, FAILED, SKIPPED, UNCHANGED, AnalyzeActor, read_photos
from lesionviewer.engine import AnalysisSettings


def test_ray_asked_for_but_not_installed_is_one_line(monkeypatch, tmp_path, lively_model, archive, capsys):
    monkeypatch.setattr(cluster, "ray_available", lambda: False)
    code = main(["analyze", str(archive / "day1"), "--out", str(tmp_path / "out"), "--model", str(lively_model),
                 "--ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("lesionviewer analyze: --ray needs Ray")
    assert "pip install 'lesionviewer[cluster]'" in err[0]
    assert not (tmp_path / "out").exists()


def test_the_default_analyze_never_imports_ray(tmp_path, lively_model, test_data):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes((test_data / "ISIC_0000068.jpg").read_bytes())
    script = ("import sys; from lesionviewer.cli import main; "
              f"code = main(['analyze', {str(photos)!r}, '--out', {str(tmp_path / 'out')!r}, "
              f"'--model', {str(lively_model)!r}, '--device', 'cpu']); "
              "print(code, sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.', 'lesionviewer.cluster'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr


def rows(paths, previous=("", "")) -> dict:
    return {"path": [str(p) for p in paths], "case_id": [Path(p).stem for p in paths],
            "previous_sha256": [previous[0]] * len(paths), "previous_device": [previous[1]] * len(paths)}


@pytest.fixture
def analysed(tmp_path, lively_model, test_data):
    """One photo analysed by the single-process analyze into tmp_path/out."""
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = photos / "mole.jpg"
    photo.write_bytes((test_data / "ISIC_0000068.jpg").read_bytes())
    assert main(["analyze", str(photos), "--out", str(tmp_path / "out"), "--model", str(lively_model),
                 "--device", "cpu"]) == 0
    return photo, tmp_path / "out"


def test_a_rerun_skips_only_photos_whose_results_are_current(analysed, lively_model):
    photo, out = analysed
    record = json.loads((out / "mole_analysis.json").read_bytes())
    model_id, settings, seed = record["model_id"], record["settings"], record["seed"]
    assert len(record["content_sha256"]) == 64

    previous = previous_result(out, "mole", model_id, settings, seed)
    assert previous == (record["content_sha256"], "cpu")
    actor = AnalyzeActor(str(lively_model), "cpu", AnalysisSettings(), seed, threads=1)
    assert list(actor(rows([photo], previous))["status"]) == [SKIPPED]
    assert list(read_photos(rows([photo], previous))["status"]) == [UNCHANGED]

    # Another seed, other settings, another model, a missing map: analysed again.
    assert previous_result(out, "mole", model_id, settings, seed + 1) == ("", "")
    assert previous_result(out, "mole", model_id, dict(settings, samples=settings["samples"] + 1), seed) == ("", "")
    assert previous_result(out, "mole", "other@12345678", settings, seed) == ("", "")
    # Made on another device: analysed here, since the bytes would differ.
    assert list(actor(rows([photo], (record["content_sha256"], "cuda:0")))["status"]) == [ANALYSED]
    # The photo's content changed under the same name: analysed again.
    cv2.imwrite(str(photo), np.full((20, 30, 3), 128, np.uint8))
    assert list(read_photos(rows([photo], previous))["status"]) == [ANALYSED]
    (out / "mole_variance.png").unlink()
    assert previous_result(out, "mole", model_id, settings, seed) == ("", "")


def test_an_unreadable_photo_fails_alone(tmp_path, test_data):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    good = tmp_path / "good.jpg"
    good.write_bytes((test_data / "ISIC_0000068.jpg").read_bytes())
    batch = read_photos(rows([broken, tmp_path / "gone.jpg", good]))
    assert list(batch["status"]) == [FAILED, FAILED, ANALYSED]
    assert "broken.jpg" in batch["error"][0] and "gone.jpg" in batch["error"][1]
    assert batch["rgb"][2].shape == (192, 256, 3)
