"""The model in models/ is what users get: it must load, match its card, and stay good.

Skipped where no model is shipped; the quality check needs ../shared/data (CI has it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lesionviewer.engine.checkpoint import read_config, sha256_file

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(d for d in MODELS.glob("*") if (d / "config.json").is_file()) if MODELS.is_dir() else []
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no model is shipped in models/")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return SHIPPED[0]


def test_shipped_model_is_complete_small_and_carded(model_dir):
    config = read_config(model_dir)
    digest = sha256_file(model_dir / "model.safetensors")
    assert config["weights"]["sha256"] == digest
    total = sum(f.stat().st_size for f in model_dir.iterdir() if f.is_file() and f.name != "train_state.pt")
    assert total < 50e6
    card = (model_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert digest in card, "the model card must quote the weights' SHA-256"
    assert "CC BY-NC" in card and "not a diagnosis" in card
    assert config.get("probe") and config.get("malignancy"), "the shipped model has trained heads"


def test_shipped_model_is_the_default(model_dir, monkeypatch):
    from lesionviewer.engine.checkpoint import find_default_model

    monkeypatch.delenv("LESIONVIEWER_MODEL", raising=False)
    assert find_default_model().resolve() == model_dir.resolve()


@pytest.mark.data
def test_shipped_model_segments_val_cases(model_dir, shared_data):
    """20 val cases: a regression floor well below the card's figures, so noise cannot fail it
    but a broken model or pipeline does."""
    from lesionviewer.engine.pipeline import Analyzer
    from lesionviewer.training.cases import read_cases
    from lesionviewer.training.data import read_mask, read_rgb

    analyzer = Analyzer.from_dir(model_dir, device="cpu")
    cases = read_cases(shared_data / "isic-train", split="val")[:20]
    dices, probabilities = [], []
    for case in cases:
        result = analyzer.analyze(read_rgb(case.image_path))
        reference = read_mask(case.mask_path)
        inter = np.count_nonzero(result.consensus_mask & reference)
        dices.append(2 * inter / max(1, result.consensus_mask.sum() + reference.sum()))
        probabilities.append(result.malignancy_probability)
    assert np.mean(dices) > 0.7
    assert all(0.0 <= p <= 1.0 for p in probabilities) and np.std(probabilities) > 0.0
