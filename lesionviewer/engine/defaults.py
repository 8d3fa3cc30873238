"""The model configuration a new backbone starts from; `train heads` fills in the rest.

Every value a user can override per analysis has its default here and is stored with the
weights, so loading never needs flags repeated.
"""

from __future__ import annotations

from typing import Any


def default_model_config(name: str, working_size: int = 96, base_channels: int = 32) -> dict[str, Any]:
    return {
        "name": name,
        "working_size": working_size,
        "unet": {
            "in_channels": 3,
            "base_channels": base_channels,
            "channel_mult": [1, 2, 3, 4],
            "num_res_blocks": 1,
            "attention_levels": [3],
            "num_classes": 3,
            "groups": 8,
            "dropout": 0.0,
        },
        "schedule": {"kind": "linear", "num_timesteps": 1000},
        "diffseg": {
            # |eps(lesion) - eps(healthy)| summed over RGB, Gaussian-smoothed, scaled by its
            # 99th percentile; then thresholded (a fixed theta, or Otsu when theta is null).
            "smoothing_sigma": 2.0,
            "threshold": None,
            "fill_holes": True,
            "mask_vignette": True,
            "statistic": "abs_difference",  # or "error_difference"; `train heads` picks on val
        },
        "probe": None,
        "malignancy": None,
        "fusion_weight": 0.5,  # weight of the probe in the fused probability
        "crf": {
            "iterations": 5,
            "max_side": 256,  # the image resolution the CRF reads, so boundaries follow edges
            "gaussian_sxy": 3.0,
            "gaussian_compat": 3.0,
            "bilateral_sxy": 30.0,
            "bilateral_srgb": 13.0,
            "bilateral_compat": 5.0,
            "unary_clip": 0.02,
        },
        "defaults": {
            "method": "diffseg",
            "samples": 4,
            "timestep_range": [60, 150],
            "crf": True,
            "threshold": 0.5,
        },
    }
