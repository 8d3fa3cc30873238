"""Skin tone (ITA) of the real photos, read around their reference masks.

    python benchmarks/skin_tone_samples.py [--data ../shared/data] [--model models/NAME]

Prints each of the 25 sample photos' estimate, then the group counts over the isic-train
``val`` split (382 photos), so a change to lesionviewer/engine/skintone.py can be judged on
real photos: no estimate may sit at the end of the scale, and "unknown" counts the photos
that cannot be measured (too little skin, or a colour cast). With --model the sample photos are
read as the app reads them: around the model's own mask, in its analysis (val is skipped).
"""

from __future__ import annotations

import argparse
import collections
import csv
import math
from pathlib import Path

import cv2

from lesionviewer.engine.skintone import estimate_skin_tone


def tone_of(photo: Path, analyzer=None):
    rgb = cv2.imread(str(photo), cv2.IMREAD_COLOR)[..., ::-1]
    if analyzer is not None:
        return analyzer.analyze(rgb.copy()).skin_tone
    lesion = cv2.imread(str(photo.with_name(photo.stem + "_mask.png")), cv2.IMREAD_GRAYSCALE)
    return estimate_skin_tone(rgb, lesion > 127)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    analyzer = None
    if args.model is not None:
        from lesionviewer.engine import Analyzer

        analyzer = Analyzer.from_dir(args.model, device="cpu")
    samples = args.data / "samples"
    photos = sorted(samples.glob("*.jpg")) + sorted(samples.glob("*/*.jpg"))
    pinned, groups = 0, collections.Counter()
    for photo in photos:
        tone = tone_of(photo, analyzer)
        groups[tone.group] += 1
        pinned += math.isfinite(tone.ita_degrees) and abs(tone.ita_degrees) >= 89.0
        print(f"{photo.stem}  ITA {tone.ita_degrees:7.2f}  {tone.group:13s}  "
              f"{tone.skin_pixels} skin px")
    print(f"samples: {len(photos)} photos, {pinned} at |ITA| >= 89, groups {dict(groups)}")
    splits = args.data / "isic-train" / "splits.csv"
    if splits.is_file() and analyzer is None:
        ids = [r["id"] for r in csv.DictReader(splits.open()) if r["split"] == "val"]
        val = collections.Counter(tone_of(splits.parent / f"{i}.jpg").group for i in ids)
        print(f"isic-train val: {len(ids)} photos, groups {dict(val)}")


if __name__ == "__main__":
    main()
