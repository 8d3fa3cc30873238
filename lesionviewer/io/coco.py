"""COCO export: one JSON with every case, masks as compressed RLE exactly as pycocotools writes it.

RLE (run-length encoding, COCO ``maskApi.c``): the mask is read column by column (Fortran
order); ``counts`` alternate runs of 0s and 1s, starting with 0s (so a mask whose first pixel
is lesion starts with a run of length 0). Compressed RLE stores those counts as a string:
from the third count on, each is stored as the difference to the count two before it; each
number is cut into 5-bit groups (least significant first), a 6th bit 0x20 says "more groups
follow", and every group is written as ``chr(group + 48)``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

import numpy as np

LESION_CATEGORY = {"id": 1, "name": "lesion", "supercategory": "skin"}


def mask_runs(mask: np.ndarray) -> list[int]:
    """Uncompressed RLE counts of an HxW bool mask (column-major, starting with a 0-run)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs.insert(0, 0)
    return [int(r) for r in runs]


def counts_to_string(counts: list[int]) -> str:
    """pycocotools ``rleToString``: RLE counts -> compressed ASCII string."""
    out: list[str] = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            group = x & 0x1F
            x >>= 5  # arithmetic shift, as on C's signed long
            more = x != -1 if group & 0x10 else x != 0
            if more:
                group |= 0x20
            out.append(chr(group + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """pycocotools ``rleFrString``: compressed ASCII string -> RLE counts."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(text):
                raise ValueError("compressed RLE string ends in the middle of a number")
            group = ord(text[p]) - 48
            x |= (group & 0x1F) << (5 * k)
            more = bool(group & 0x20)
            p += 1
            k += 1
            if not more and group & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """HxW bool mask -> ``{"size": [H, W], "counts": str}`` (pycocotools ``mask.encode`` output,
    with counts decoded from bytes to str as COCO JSON files hold it)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"an RLE mask is HxW, got shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts_to_string(mask_runs(mask))}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """``{"size": [H, W], "counts": str | bytes | list[int]}`` -> HxW bool mask.

    Accepts compressed (string or bytes) and uncompressed (list) counts; raises ValueError when
    the counts do not add up to H*W.
    """
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = string_to_counts(counts)
    counts = [int(c) for c in counts]
    if any(c < 0 for c in counts) or sum(counts) != height * width:
        raise ValueError(f"RLE counts add up to {sum(counts)}, not {height} x {width}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO bbox ``[x, y, width, height]`` of the lesion pixels (pycocotools ``toBbox``);
    all zeros for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def coco_from_cases(
    cases: Iterable[tuple[str, np.ndarray]],
    description: str = "lesionviewer export",
    app_version: str | None = None,
) -> dict[str, Any]:
    """One COCO instance-segmentation dataset from ``(image file name, HxW bool mask)`` pairs.

    Images get ids 1, 2, ... in the given order; one category, "lesion" (id 1); each case with
    a non-empty mask gets one annotation holding its whole mask as compressed RLE, its area in
    pixels and its bbox. ``iscrowd`` is 0 so COCO evaluation counts the lesions (pycocotools
    ``annToRLE`` reads RLE segmentations either way). File names must be distinct (a COCO
    reader matches images by name); a repeated one raises ValueError.
    """
    if app_version is None:
        from lesionviewer import __version__ as app_version
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    seen: set[str] = set()
    for image_id, (file_name, mask) in enumerate(cases, start=1):
        if str(file_name) in seen:
            raise ValueError(f"'{file_name}' is listed twice; COCO file names must be distinct")
        seen.add(str(file_name))
        mask = np.asarray(mask, dtype=bool)
        height, width = mask.shape
        images.append({"id": image_id, "file_name": str(file_name), "width": int(width), "height": int(height)})
        area = int(np.count_nonzero(mask))
        if area == 0:
            continue
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": LESION_CATEGORY["id"],
                "segmentation": rle_encode(mask),
                "area": area,
                "bbox": mask_bbox(mask),
                "iscrowd": 0,
            }
        )
    return {
        "info": {
            "description": description,
            "version": str(app_version),
            "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [dict(LESION_CATEGORY)],
    }
