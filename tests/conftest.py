"""Shared fixtures: a tiny random model on disk (tests only; never shipped) and the real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


def tiny_config(name: str = "tiny-random-test") -> dict:
    """A model configuration small enough to analyse an image in a few milliseconds."""
    from lesionviewer.engine.defaults import default_model_config

    config = default_model_config(name=name, working_size=32, base_channels=8)
    config["unet"].update(channel_mult=[1, 2], attention_levels=[1], groups=4)
    config["probe"] = {"blocks": ["dec0", "dec1"], "include_rgb": True, "feature_size": 16,
                       "hidden": 8, "members": 2, "classes": ["background", "lesion"]}
    config["malignancy"] = {"hidden": 8}
    config["crf"]["max_side"] = 64
    config["crf"]["iterations"] = 2
    config["defaults"]["method"] = "fused"
    return config


def write_tiny_model(model_dir: Path, seed: int = 0) -> Path:
    import torch

    from lesionviewer.engine.checkpoint import save_model
    from lesionviewer.engine.model import build_model

    torch.manual_seed(seed)
    model = build_model(tiny_config())
    # Random weights give near-constant outputs; perturb the output layers so maps vary.
    with torch.no_grad():
        model.unet.out.weight.normal_(0, 0.5)
    save_model(model_dir, model.config, model.state_dict())
    return model_dir


def _enliven(model) -> None:
    """Perturb the tiny model's zero-initialised layers in place, so labels change the predicted
    noise and DiffSeg masks depend on the image, the seed and the settings (the plain tiny
    model's masks are all empty or all lesion)."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.unet.named_parameters():
            if name.endswith(("conv2.weight", "proj.weight")) or name == "out.weight":
                p.normal_(0, 0.3)
        model.unet.class_embed.weight.normal_(0, 1.0)


@pytest.fixture(scope="session")
def enliven():
    """The function that makes a loaded tiny model's maps vary (see _enliven)."""
    return _enliven


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny-random-test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "isic-train" / "splits.csv").is_file():
        pytest.skip("the full data set (../shared/data) is not present on this machine")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_data() -> Path:
    return TEST_DATA
