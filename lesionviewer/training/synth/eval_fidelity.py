"""Fidelity to the mask: does the shipped analysis model find the conditioning mask in the image?

Each pair's photo is analysed as ``lesionviewer analyze`` does (the Analyzer with the model's
default method and settings, seed 0) and its consensus mask scored by Dice against the pair's
mask. The same figure on real `val` pairs (photo and expert mask) is the ceiling: what the model
reaches on real photos. The floor pairs each analysed photo with the mask of another pair of
the same set (a fixed derangement), what a photo unrelated to its mask would score.

For synthetic pairs the report also gives how often the skin tone the Analyzer measures (ITA
of the skin around its mask) falls in the group the pair was asked for (``tone`` column of
labels.csv), when the set records one.
"""

from __future__ import annotations

import cv2
import numpy as np
from tqdm import tqdm

from lesionviewer.io.images import load_image, load_mask
from lesionviewer.training.metrics import dice
from lesionviewer.training.synth.eval_features import cached, cache_key


def _derangement(n: int, seed: int) -> np.ndarray:
    """A permutation with no fixed point (a cyclic shift of a random order)."""
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, np.int64)
    out[order] = np.roll(order, 1)
    return out


def _analyse(analyzer, case, seed: int, cache_dir, size: int | None = None) -> dict[str, np.ndarray]:
    """The Analyzer's consensus mask (HxW bool, the photo's size, or size x size when given: the
    photo is first resized to it) and measured tone group of one photo, cached per photo so any
    number of photos reuses earlier analyses."""
    def compute() -> dict:
        rgb = load_image(case.image_path).rgb
        if size is not None:
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        analysis = analyzer.analyze(rgb, seed=seed)
        return {"prediction": analysis.consensus_mask, "tone": np.array(analysis.skin_tone.group)}

    stat = case.image_path.stat()
    stamp = np.frombuffer(f"{case.image_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode(), np.uint8)
    extra = {} if size is None else {"size": size}
    key = cache_key(analyzer.model, stamp, seed=seed, settings=analyzer.default_settings.to_dict(), kind="analysis",
                    **extra)
    return cached(cache_dir, "analysis", key, compute)


def analyse_pairs(analyzer, cases, *, seed: int = 0, cache_dir=None, size: int | None = None) -> dict[str, np.ndarray]:
    """Per case: Dice against its own mask ("dice"), against a deranged other case's mask
    ("dice_other") and the measured ITA group ("tone"). cases: CaseRecords with masks; size:
    analyse each photo resized to size x size (masks follow, nearest neighbour)."""
    predictions, masks, tones = [], [], []
    for case in tqdm(cases, desc="fidelity", unit="image", dynamic_ncols=True):
        analysed = _analyse(analyzer, case, seed, cache_dir, size)
        predictions.append(analysed["prediction"].astype(bool))
        masks.append(load_mask(case.mask_path, shape=predictions[-1].shape))
        tones.append(str(analysed["tone"]))
    other = _derangement(len(cases), seed) if len(cases) > 1 else np.zeros(len(cases), np.int64)
    own = [dice(p, m) for p, m in zip(predictions, masks)]
    foreign = [dice(p, cv2.resize(masks[j].astype(np.uint8), p.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0)
               for p, j in zip(predictions, other)]
    return {"dice": np.array(own), "dice_other": np.array(foreign), "tone": np.array(tones, dtype=str)}


def fidelity_row(name: str, scored: dict[str, np.ndarray], asked_tones: list[str] | None = None) -> dict:
    row = {"set": name, "n": int(len(scored["dice"])), "dice": round(float(np.mean(scored["dice"])), 4),
           "dice_random_mask": round(float(np.mean(scored["dice_other"])), 4)}
    if asked_tones and any(t not in ("", "unknown") for t in asked_tones):
        asked = np.array(asked_tones, dtype=str)
        known = (asked != "") & (asked != "unknown")  # "unknown" asks for no particular group
        row["tone_agreement"] = round(float(np.mean(scored["tone"][known] == asked[known])), 3)
        row["tone_asked_n"] = int(known.sum())
        row["tone_measured_unknown"] = round(float(np.mean(scored["tone"][known] == "unknown")), 3)
    return row
