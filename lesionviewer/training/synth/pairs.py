"""Training pairs for the synthesis model: images, masks and condition labels in memory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from lesionviewer.engine.skintone import estimate_skin_tone
from lesionviewer.training import data as D
from lesionviewer.training.cases import read_cases
from lesionviewer.training.synth.model import DIAGNOSES, TONES


@dataclasses.dataclass
class PairSet:
    images: torch.Tensor  # N x 3 x S x S float32 in -1..1
    masks: torch.Tensor  # N x S x S bool
    tones: torch.Tensor  # N long, index into TONES (ITA group of the photo's skin)
    diagnoses: torch.Tensor  # N long, index into DIAGNOSES
    ids: list[str]


def diagnosis_index(diagnosis: str) -> int:
    return DIAGNOSES.index(diagnosis) if diagnosis in DIAGNOSES else DIAGNOSES.index("unknown")


def load_pairs(data_dir: str | Path, size: int, split: str | None = "train", limit: int | None = None) -> PairSet:
    """The cases of ``split`` (all when None) that have a mask, at ``size`` x ``size``; the tone
    group is measured (engine.skintone) on the resized photo around its expert mask."""
    cases = [c for c in read_cases(data_dir, split=split) if c.mask_path is not None][:limit]
    if not cases:
        raise SystemExit(f"no {split or ''} cases with masks in {data_dir}")
    arrays = D.load_arrays(cases, size)
    tones = [TONES.index(estimate_skin_tone(img, m).group) for img, m in zip(arrays.images, arrays.masks)]
    return PairSet(D.to_model_range(arrays.images), torch.from_numpy(arrays.masks),
                   torch.tensor(tones, dtype=torch.long),
                   torch.tensor([diagnosis_index(c.diagnosis) for c in cases], dtype=torch.long),
                   [c.id for c in cases])


def tone_counts(pairs: PairSet) -> dict[str, int]:
    counts = np.bincount(pairs.tones.numpy(), minlength=len(TONES))
    return {name: int(n) for name, n in zip(TONES, counts)}
