"""Helpers shared by the io tests: a synthetic Analysis (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from lesionviewer.engine.analysis import Analysis, SkinTone


def make_analysis(height: int = 24, width: int = 32, samples: int = 4, seed: int = 0, region=None) -> Analysis:
    """An Analysis whose maps are consistent with its sample masks, like the engine's."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    distance = np.hypot(yy - height / 2, xx - width / 2) / (min(height, width) / 2)
    sample_masks = np.stack([distance < 0.5 + 0.15 * rng.random() for _ in range(samples)])
    probability = sample_masks.mean(axis=0).astype(np.float32)
    variance = (probability * (1 - probability)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = probability.astype(np.float64)
        entropy = np.nan_to_num(-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).astype(np.float32)
    return Analysis(
        consensus_probability=probability,
        consensus_mask=probability >= 0.5,
        variance=variance,
        entropy=entropy,
        sample_masks=sample_masks,
        timesteps=tuple(range(60, 60 + 30 * samples, 30)),
        ged=0.125,
        malignancy_probability=0.42,
        skin_tone=SkinTone(ita_degrees=41.5, group="light", skin_pixels=int((~sample_masks[0]).sum())),
        model_id="lesionviewer-ddpm-test@00000000",
        device="cpu",
        settings={"samples": samples, "timestep_range": [60, 150], "crf": True, "method": "fused",
                  "threshold": 0.5, "device": "auto"},
        timings={"denoiser": 0.5, "total": 0.75},
        region=region,
        seed=seed,
    )


@pytest.fixture
def analysis() -> Analysis:
    return make_analysis()


@pytest.fixture
def analysis_factory():
    """make_analysis(height, width, samples, seed, region) -> Analysis."""
    return make_analysis
