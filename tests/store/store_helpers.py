"""Small photo and mask makers shared by the store's tests (loaded by file path: tests/ has no
packages)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

H, W = 40, 60


def photo(folder: Path, name: str = "case.png", seed: int = 0) -> Path:
    """A small random RGB PNG (distinct bytes per seed) at folder/name."""
    rng = np.random.default_rng(seed)
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    return path


def box(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """An HxW bool mask with one filled rectangle."""
    mask = np.zeros((H, W), bool)
    mask[top:bottom, left:right] = True
    return mask


def summary(ged: float = 0.1, malignancy: float | None = 0.3, withheld: str | None = None,
            ood: bool | None = False) -> dict:
    """An analysis record shaped like Analysis.report()."""
    return {"model_id": "tiny@1", "device": "cpu", "ged": ged,
            "malignancy_probability": None if withheld else malignancy,
            "malignancy_range": None if withheld else [0.1, 0.6], "malignancy_withheld": withheld,
            "ood_score": 3.0, "ood": ood, "ged_level": "low",
            "skin_tone": {"ita_degrees": None, "group": "unknown", "skin_pixels": 0},
            "lesion_fraction": 0.2, "timesteps": [60, 100], "settings": {"samples": 2},
            "seed": 0, "region": None, "seconds": {"total": 0.5}}
