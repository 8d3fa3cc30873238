"""The real test: the shipped probe design trained on real `train` labels only, and on the same
real labels plus every pair of a synthetic set, at several label fractions; Dice on real `val`
overall and per ITA skin-tone group, with a paired bootstrap interval of each gain.

Same backbone features, timesteps, pixels per image, members, epochs and seeds in every arm, and
the same real images at each fraction (``heads.label_subset``), so the arms differ only in the
synthetic pairs. `val` is scored as ``train heads`` scores its probes: at the working
resolution, no DenseCRF, the mean lesion probability over the timesteps at 0.5.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from lesionviewer.engine.probe import ProbeConfig
from lesionviewer.engine.skintone import estimate_skin_tone
from lesionviewer.training.data import read_mask, read_rgb
from lesionviewer.training.features import FeatureSet, select_channels
from lesionviewer.training.heads import label_subset, pixel_rows
from lesionviewer.training.probe_fit import probe_probabilities, train_probe
from lesionviewer.training.synth.eval_features import cached

GROUP_ORDER = ("very light", "light", "intermediate", "tan", "brown", "dark", "unknown")


def case_tone_groups(cases) -> list[str]:
    """ITA group of each case's skin outside its expert mask, at the photo's own size."""
    return [estimate_skin_tone(read_rgb(c.image_path), read_mask(c.mask_path)).group for c in cases]


def case_dice(probe, val_fs: FeatureSet, channels: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,) Dice per `val` case of the mean probability over the timesteps at 0.5; masks (N, S, S) bool."""
    size = masks.shape[1]
    mean_p = np.mean([probe_probabilities(probe, val_fs.maps[t][:, channels], size)
                      for t in range(len(val_fs.timesteps))], axis=0)
    pred = mean_p >= 0.5
    inter = (pred & masks).sum((1, 2))
    total = pred.sum((1, 2)) + masks.sum((1, 2))
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)


def bootstrap_interval(diff: np.ndarray, *, resamples: int = 2000, seed: int = 0) -> list[float]:
    """95 % percentile interval of the mean of per-case differences, cases resampled."""
    if len(diff) == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    return [round(float(v), 4) for v in np.percentile(means, [2.5, 97.5])]


def _by_group(values: np.ndarray, groups: np.ndarray) -> dict[str, dict]:
    present = [g for g in GROUP_ORDER if g in set(groups)]
    return {g: {"n": int((groups == g).sum()), "dice": round(float(values[groups == g].mean()), 4)} for g in present}


def label_fraction_table(train_fs: FeatureSet, val_fs: FeatureSet, val_masks: np.ndarray, val_groups: list[str],
                         synthetic: dict[str, FeatureSet], probe_cfg: ProbeConfig, *, fractions, epochs: int = 3,
                         seed: int = 0, log=print, cache_dir=None, keys: dict[str, str] | None = None) -> list[dict]:
    """One row per (fraction, arm): arm "real" and one per synthetic set (real + all its pairs).

    train_fs / synthetic: pixel features (``pixels``, ``pixel_labels``); val_fs: whole maps.
    keys: feature cache keys by name ("train", "val", each synthetic set's); with them and
    ``cache_dir`` each arm's per-case `val` Dice is cached, so the real arms can run ahead."""
    channels = select_channels(train_fs.channels, probe_cfg.blocks, include_rgb=probe_cfg.include_rgb)
    groups = np.array(val_groups, dtype=str)
    n_real = train_fs.pixels.shape[1]
    rows = []
    for fraction in fractions:
        chosen = label_subset(n_real, fraction, seed)
        baseline = None
        for arm in ("real", *synthetic):
            def fit_and_score(arm=arm, chosen=chosen) -> dict:
                x, y = pixel_rows(train_fs, chosen, channels)
                if arm != "real":
                    extra_x, extra_y = pixel_rows(synthetic[arm], np.arange(synthetic[arm].pixels.shape[1]), channels)
                    x, y = np.concatenate([x, extra_x]), np.concatenate([y, extra_y])
                probe = train_probe(probe_cfg, x, y, epochs=epochs, seed=seed)
                return {"dice": case_dice(probe, val_fs, channels, val_masks)}

            if keys is None:
                per_case = fit_and_score()["dice"]
            else:
                names = [keys["train"], keys["val"]] + ([] if arm == "real" else [keys[arm]])
                key = hashlib.sha256(json.dumps([names, fraction, seed, epochs, probe_cfg.to_dict()]).encode())
                per_case = cached(cache_dir, "probe-dice", key.hexdigest()[:20], fit_and_score)["dice"]
            row = {"fraction": fraction, "train_images": int(len(chosen)), "arm": arm,
                   "synthetic_images": 0 if arm == "real" else int(synthetic[arm].pixels.shape[1]),
                   "dice": round(float(per_case.mean()), 4), "per_group": _by_group(per_case, groups)}
            if baseline is None:
                baseline = per_case
            else:
                diff = per_case - baseline
                row["gain"] = round(float(diff.mean()), 4)
                row["gain_interval"] = bootstrap_interval(diff, seed=seed)
                row["per_group_gain"] = {g: round(float(diff[groups == g].mean()), 4) for g in row["per_group"]}
            rows.append(row)
            log(f"  fraction {fraction:>4} ({len(chosen)} real) {arm:>10}: val Dice {row['dice']:.4f}"
                + (f"  gain {row['gain']:+.4f} {row['gain_interval']}" if "gain" in row else ""))
    return rows
