"""Siamese-Diffusion synthesis (issue 7), CI-sized: a tiny synthesis model trained a few steps
on a handful of real pairs (made from the two test photos), resumed, then used by
`lesionviewer synth`; the analysis loader and the synthesis loader refuse each other's models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lesionviewer.cli import main
from lesionviewer.engine import checkpoint
from lesionviewer.engine.checkpoint import ModelError, read_config, sha256_file
from lesionviewer.engine.model import load_model
from lesionviewer.training.synth.model import load_synthesis_model

CASES = ("ISIC_0000068", "ISIC_0024311")
TINY = ["--init", "none", "--size", "32", "--base-channels", "8", "--hint-channels", "8,8,8,8", "--batch", "2",
        "--threads", "1"]


@pytest.fixture(scope="module")
def mini_pairs(tmp_path_factory, write_test_pairs):
    """Four train pairs (the two test photos and their mirror images) in the shared data format."""
    pairs = [(c, f) for f in (None, 1) for c in CASES]
    return write_test_pairs(tmp_path_factory.mktemp("mini-pairs"),
                            [(f"ISIC_{9100000 + k:07d}", case, flip, "train", k % 2)
                             for k, (case, flip) in enumerate(pairs)])


@pytest.fixture(scope="module")
def tiny_synth(mini_pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny-synth"
    assert main(["train", "synth", "--data", str(mini_pairs), "--out", str(out), "--steps", "2", *TINY]) == 0
    assert main(["train", "synth", "--data", str(mini_pairs), "--out", str(out), "--steps", "4", "--resume", *TINY]) == 0
    return out


def test_train_synth_resumes_and_writes_a_synthesis_model(tiny_synth):
    config = read_config(tiny_synth, kind="synthesis")
    training = config["synthesis_training"]
    assert config["kind"] == "synthesis"
    assert training["steps"] == 4 and training["final"] and len(training["commands"]) == 2
    assert "--resume" in training["commands"][1]
    assert training["image_branch"] and training["consistency"] == 1.0
    assert (tiny_synth / "MODEL_CARD.md").read_text().count("## Measurements") == 1
    # the shipped weights leave out the training-only image branch
    model = load_synthesis_model(tiny_synth)
    assert model.denoiser.image_hint is None and model.model_id.startswith("tiny-synth@")


def test_synth_command_writes_pairs_labels_and_contact_sheet(tiny_synth, mini_pairs, tmp_path):
    out = tmp_path / "pairs"
    assert main(["synth", "--model", str(tiny_synth), "--masks", str(mini_pairs), "--out", str(out), "-n", "5",
                 "--steps", "2", "--guidance", "2", "--batch", "2", "--tone", "tan", "--seed", "3"]) == 0
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    for column in ("id", "source", "diagnosis", "malignant", "label_source", "synthetic", "tone", "mask_origin",
                   "parent_id"):
        assert column in rows[0]
    assert {r["source"] for r in rows} == {"synthetic"} and {r["synthetic"] for r in rows} == {"1"}
    assert {r["tone"] for r in rows} == {"tan"} and {r["label_source"] for r in rows} == {"conditioned"}
    assert {r["mask_origin"] for r in rows} == {"real", "deformed"}  # half deformed by default
    parents = {r["parent_id"] for r in rows}
    assert parents <= {f"ISIC_{9100000 + k:07d}" for k in range(4)} and len(parents) == 4
    for r in rows:
        image = cv2.imread(str(out / f"{r['id']}.jpg"))
        mask = cv2.imread(str(out / f"{r['id']}_mask.png"), cv2.IMREAD_GRAYSCALE)
        assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
        assert set(np.unique(mask)) <= {0, 255} and mask.any()
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 2 * 96
    # the same seed gives the same pairs
    again = tmp_path / "again"
    assert main(["synth", "--model", str(tiny_synth), "--masks", str(mini_pairs), "--out", str(again), "-n", "2",
                 "--steps", "2", "--guidance", "2", "--batch", "1", "--tone", "tan", "--seed", "3"]) == 0
    for r in rows[:2]:
        assert np.array_equal(cv2.imread(str(out / f"{r['id']}.jpg")), cv2.imread(str(again / f"{r['id']}.jpg")))


def test_analysis_loader_refuses_a_synthesis_model(tiny_synth, mini_pairs, tmp_path):
    with pytest.raises(ModelError, match="synthesis model") as err:
        load_model(tiny_synth)
    assert str(err.value).count(";") == 1 and "\n" not in str(err.value)
    with pytest.raises(ModelError, match="synthesis model"):
        read_config(tiny_synth)
    with pytest.raises(SystemExit, match="synthesis model"):  # nor can it start another synthesis model
        main(["train", "synth", "--data", str(mini_pairs), "--out", str(tmp_path / "x"), "--init", str(tiny_synth)])


def test_synth_refuses_an_analysis_model(tiny_model_dir, mini_pairs, tmp_path, capsys):
    with pytest.raises(ModelError, match="analysis model, not a synthesis model"):
        load_synthesis_model(tiny_model_dir)
    assert main(["synth", "--model", str(tiny_model_dir), "--masks", str(mini_pairs), "--out", str(tmp_path / "x"),
                 "-n", "1"]) == 2
    assert "analysis model, not a synthesis model" in capsys.readouterr().out
    assert not (tmp_path / "x").exists()


def test_default_model_skips_synthesis_models(tiny_synth, tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "models"
    shutil.copytree(tiny_synth, root / "a-synthesis")
    shutil.copytree(tiny_model_dir, root / "b-analysis")
    monkeypatch.delenv(checkpoint.MODEL_ENV, raising=False)
    monkeypatch.setattr(checkpoint, "_candidate_dirs", lambda: [root])
    assert checkpoint.find_default_model() == root / "b-analysis"


SHIPPED = Path(__file__).resolve().parents[2] / "models" / "lesionviewer-synth-s96"


@pytest.mark.skipif(not (SHIPPED / "config.json").is_file(), reason="no synthesis model is shipped")
def test_shipped_synthesis_model_loads_and_is_carded():
    model = load_synthesis_model(SHIPPED)
    card = (SHIPPED / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert sha256_file(SHIPPED / "model.safetensors") in card and "CC BY-NC" in card
    assert "## Measurements" in card and "Deviations from the paper" in card
    assert model.config["synthesis_training"]["split"] == "train"
    with pytest.raises(ModelError, match="synthesis model"):
        read_config(SHIPPED)


def test_an_unknown_or_malformed_kind_is_refused_by_the_schema(tiny_model_dir):
    from lesionviewer.engine.config_schema import ConfigError, validate_config

    config = json.loads((tiny_model_dir / "config.json").read_text())
    validate_config(config)
    for kind in ("foo", ["synthesis"], 3):
        with pytest.raises(ConfigError, match="kind"):
            validate_config(dict(config, kind=kind))
