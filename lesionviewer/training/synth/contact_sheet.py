"""Contact sheets: a grid of photos with their mask outlined, one row per source (real photos,
then each synthesis model's images for the same masks), so a person can look at them.

    python -m lesionviewer.training.synth.contact_sheet --data ../shared/data/isic-train \
        --runs runs/synth-pairs/full runs/synth-pairs/ablation --labels full ablation \
        --out docs/synth-contact-sheet.png -n 8
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from lesionviewer.training import data as D

OUTLINE_RGB = (0, 158, 115)  # Okabe-Ito bluish green, visible on skin and on dark lesions
LABEL_WIDTH = 140


def outlined(image: np.ndarray, mask: np.ndarray, tile: int) -> np.ndarray:
    """image HxWx3 uint8 RGB, mask HxW bool -> tile x tile x 3 uint8 with the mask's outline."""
    img = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA if image.shape[0] > tile else cv2.INTER_CUBIC)
    m = cv2.resize(mask.astype(np.uint8), (tile, tile), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    img = np.ascontiguousarray(img)
    cv2.drawContours(img, contours, -1, OUTLINE_RGB, max(1, tile // 96))
    return img


def contact_sheet(rows: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], labels: Sequence[str],
                  tile: int = 128, gap: int = 4) -> np.ndarray:
    """rows of (image HxWx3 uint8 RGB, mask HxW bool) pairs -> one RGB uint8 grid, a label left
    of each row."""
    cols = max(len(r) for r in rows)
    height = len(rows) * (tile + gap) + gap
    width = LABEL_WIDTH + cols * (tile + gap) + gap
    sheet = np.full((height, width, 3), 255, np.uint8)
    for r, (row, label) in enumerate(zip(rows, labels)):
        y = gap + r * (tile + gap)
        for i, line in enumerate(label.split("\n")):
            cv2.putText(sheet, line, (6, y + tile // 2 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                        cv2.LINE_AA)
        for c, (image, mask) in enumerate(row):
            x = LABEL_WIDTH + gap + c * (tile + gap)
            sheet[y:y + tile, x:x + tile] = outlined(image, mask, tile)
    return sheet


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"cannot write {path}")


def read_labels(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def compare_runs(data_dir: Path, runs: Sequence[Path], labels: Sequence[str], n: int, tile: int = 128) -> np.ndarray:
    """Real parents (photo + expert mask) on top, then each run's first ``n`` synthetic pairs
    (photo + the mask it was made from); the runs must share parents (same masks, -n, seed)."""
    first = read_labels(runs[0])[:n]
    real = [(D.read_rgb(data_dir / f"{r['parent_id']}.jpg"), D.read_mask(data_dir / f"{r['parent_id']}_mask.png"))
            for r in first]
    rows, names = [real], ["real photo,\nexpert mask"]
    for run, label in zip(runs, labels):
        pairs = read_labels(run)[:n]
        if [p["parent_id"] for p in pairs] != [r["parent_id"] for r in first]:
            raise SystemExit(f"{run} was made from other masks than {runs[0]}; use the same --masks, -n and --seed")
        rows.append([(D.read_rgb(run / f"{p['id']}.jpg"), D.read_mask(run / f"{p['id']}_mask.png")) for p in pairs])
        deformed = sum(p["mask_origin"] == "deformed" for p in pairs)
        names.append(f"{label}\n({deformed} of {len(pairs)} masks\ndeformed)" if deformed else label)
    return contact_sheet(rows, names, tile)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="the real data the masks came from")
    p.add_argument("--runs", required=True, nargs="+", type=Path, help="folders written by `lesionviewer synth`")
    p.add_argument("--labels", nargs="+", help="row labels, one per run")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("-n", type=int, default=8)
    p.add_argument("--tile", type=int, default=128)
    args = p.parse_args(argv)
    labels = [label.replace("\\n", "\n") for label in args.labels or [r.name for r in args.runs]]  # "\n" breaks a line
    write_png(args.out, compare_runs(args.data, args.runs, labels, args.n, args.tile))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
