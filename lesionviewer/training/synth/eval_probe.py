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


BATCH_ROWS = 4096  # probe_fit.train_probe's batch


def _equal_epochs(epochs: int, rows: int, most_rows: int, min_steps: int) -> int:
    """Epochs giving an arm of ``rows`` pixel rows about as many optimiser steps as ``epochs``
    epochs of the fraction's largest arm (and at least ``min_steps``), so no arm wins by
    training longer and small fractions are not left undertrained."""
    visits = max(epochs * most_rows, min_steps * BATCH_ROWS)
    return max(1, round(visits / max(1, rows)))


def label_fraction_table(train_fs: FeatureSet, val_fs: FeatureSet, val_masks: np.ndarray, val_groups: list[str],
                         synthetic: dict[str, FeatureSet], probe_cfg: ProbeConfig, *, fractions, epochs: int = 3,
                         seed: int = 0, repeats: int = 1, min_steps: int = 0, log=print, cache_dir=None,
                         keys: dict[str, str] | None = None) -> list[dict]:
    """One row per (fraction, arm): arm "real" and one per synthetic set (real + all its pairs).

    Each row is averaged over ``repeats`` seeds (seed, seed + 1, ...): the seed draws the real
    labelled images and the probe's initialisation, the same in every arm; fraction 1.0 takes
    one seed (every real image is in it). Within a fraction and seed every arm gets the same
    number of optimiser steps (``epochs`` epochs of its largest arm, at least ``min_steps``).
    train_fs / synthetic: pixel features (``pixels``, ``pixel_labels``); val_fs: whole maps.
    keys: feature cache keys by name ("train", "val", each synthetic set's); with them and
    ``cache_dir`` each arm's per-case `val` Dice is cached, so the real arms can run ahead."""
    channels = select_channels(train_fs.channels, probe_cfg.blocks, include_rgb=probe_cfg.include_rgb)
    groups = np.array(val_groups, dtype=str)
    n_real = train_fs.pixels.shape[1]
    per_image = train_fs.pixels.shape[0] * train_fs.pixels.shape[2]  # rows per image: timesteps x pixels
    n_synth = {name: fs.pixels.shape[1] for name, fs in synthetic.items()}
    rows = []
    for fraction in fractions:
        scores: dict[str, list[np.ndarray]] = {arm: [] for arm in ("real", *synthetic)}
        used_epochs: dict[str, list[int]] = {arm: [] for arm in scores}
        for r in range(repeats if fraction < 1.0 else 1):
            chosen = label_subset(n_real, fraction, seed + r)
            most = (len(chosen) + max(n_synth.values(), default=0)) * per_image
            for arm in scores:
                arm_epochs = _equal_epochs(epochs, (len(chosen) + n_synth.get(arm, 0)) * per_image, most, min_steps)

                def fit_and_score(arm=arm, chosen=chosen, arm_epochs=arm_epochs, r=r) -> dict:
                    x, y = pixel_rows(train_fs, chosen, channels)
                    if arm != "real":
                        extra_x, extra_y = pixel_rows(synthetic[arm], np.arange(n_synth[arm]), channels)
                        x, y = np.concatenate([x, extra_x]), np.concatenate([y, extra_y])
                    probe = train_probe(probe_cfg, x, y, epochs=arm_epochs, seed=seed + r)
                    return {"dice": case_dice(probe, val_fs, channels, val_masks)}

                if keys is None:
                    per_case = fit_and_score()["dice"]
                else:
                    names = [keys["train"], keys["val"]] + ([] if arm == "real" else [keys[arm]])
                    key = hashlib.sha256(json.dumps([names, fraction, seed + r, arm_epochs, probe_cfg.to_dict()]).encode())
                    per_case = cached(cache_dir, "probe-dice", key.hexdigest()[:20], fit_and_score)["dice"]
                scores[arm].append(per_case)
                used_epochs[arm].append(arm_epochs)
                log(f"  fraction {fraction:>4} seed {seed + r} ({len(chosen)} real) {arm:>22}: val Dice "
                    f"{per_case.mean():.4f} ({arm_epochs} epochs)")
        baseline = np.mean(scores["real"], axis=0)
        for arm, runs in scores.items():
            per_case = np.mean(runs, axis=0)
            row = {"fraction": fraction, "train_images": int(len(label_subset(n_real, fraction, seed))), "arm": arm,
                   "synthetic_images": int(n_synth.get(arm, 0)), "repeats": len(runs), "epochs": used_epochs[arm],
                   "dice": round(float(per_case.mean()), 4),
                   "dice_per_seed": [round(float(d.mean()), 4) for d in runs],
                   "per_group": _by_group(per_case, groups)}
            if arm != "real":
                diff = per_case - baseline
                row["gain"] = round(float(diff.mean()), 4)
                row["gain_interval"] = bootstrap_interval(diff, seed=seed)
                row["gain_per_seed"] = [round(float(d.mean() - b.mean()), 4) for d, b in zip(runs, scores["real"])]
                row["per_group_gain"] = {g: round(float(diff[groups == g].mean()), 4) for g in row["per_group"]}
            rows.append(row)
            log(f"  fraction {fraction:>4} {arm:>22}: val Dice {row['dice']:.4f} over {len(runs)} seed(s)"
                + (f"  gain {row['gain']:+.4f} {row['gain_interval']} per seed {row['gain_per_seed']}"
                   if "gain" in row else ""))
    return rows
