"""Fixtures for the Ray tests: the lively tiny model and 40 real photos (variants of the two
in tests/data, so they run wherever the repository does) plus one damaged file."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

PHOTOS = 40


@pytest.fixture(scope="session")
def lively_model(tiny_model_dir, tmp_path_factory, enliven) -> Path:
    """The tiny model with its zero-initialised layers perturbed, so its masks vary."""
    from lesionviewer.engine.checkpoint import save_model
    from lesionviewer.engine.model import load_model

    model = load_model(tiny_model_dir)
    enliven(model)
    config = {k: v for k, v in model.config.items() if k not in ("weights", "format", "format_version")}
    target = tmp_path_factory.mktemp("cluster-model") / "lively"
    save_model(target, dict(config, name="lively-cluster-test"), model.state_dict())
    return target


@pytest.fixture(scope="session")
def archive(test_data, tmp_path_factory) -> Path:
    """40 photos in two day folders (crops and flips of the real test photos, one with its
    expert mask) and a damaged JPEG: the ids mirror the folders as analyze's do."""
    root = tmp_path_factory.mktemp("archive")
    sources = [cv2.imread(str(test_data / name)) for name in ("ISIC_0000068.jpg", "ISIC_0024311.jpg")]
    for i in range(PHOTOS - 1):  # and the untouched photo with its mask below
        day = root / f"day{1 + i % 2}"
        day.mkdir(exist_ok=True)
        image = sources[i % 2]
        h, w = image.shape[:2]
        crop = image[i // 2: h - (i // 4), (i // 3): w - (i // 2)]
        cv2.imwrite(str(day / f"case_{i:02d}.jpg"), cv2.flip(crop, i % 3 - 1) if i % 5 else crop)
    (root / "day1" / "mole.jpg").write_bytes((test_data / "ISIC_0000068.jpg").read_bytes())
    (root / "day1" / "mole_mask.png").write_bytes((test_data / "ISIC_0000068_mask.png").read_bytes())
    (root / "day2" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" + bytes(range(256)))
    return root
