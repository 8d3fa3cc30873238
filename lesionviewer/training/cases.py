"""Reading the shared data format: ``ID.jpg`` + ``ID_mask.png`` + ``labels.csv`` [+ ``splits.csv``].

Case ids may contain a sub-folder (``ham10000-600x450/ISIC_0024311``), as in ``samples/``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
MASK_SUFFIXES = ("_mask.png", "_segmentation.png")


@dataclasses.dataclass(frozen=True)
class CaseRecord:
    id: str
    image_path: Path
    mask_path: Path | None
    diagnosis: str = ""
    malignant: int | None = None  # 1, 0, or None when unknown
    split: str = ""


def is_mask_file(path: Path) -> bool:
    return path.name.lower().endswith(MASK_SUFFIXES)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_cases(data_dir: str | Path, split: str | None = None) -> list[CaseRecord]:
    """All cases under ``data_dir`` (recursively), sorted by id; only ``split`` when given.

    A split other than None needs ``splits.csv``; cases it does not list are left out.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    labels = {r["id"]: r for r in _read_csv(root / "labels.csv")}
    splits = {r["id"]: r["split"] for r in _read_csv(root / "splits.csv")}
    if split is not None and not splits:
        raise FileNotFoundError(f"--split {split} asked for, but {root / 'splits.csv'} is missing")
    cases = []
    for image_path in sorted(root.rglob("*")):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES or is_mask_file(image_path):
            continue
        case_id = image_path.relative_to(root).with_suffix("").as_posix()
        if split is not None and splits.get(case_id) != split:
            continue
        mask_path = image_path.with_name(image_path.stem + "_mask.png")
        row = labels.get(case_id, {})
        malignant = row.get("malignant", "")
        cases.append(
            CaseRecord(
                id=case_id,
                image_path=image_path,
                mask_path=mask_path if mask_path.is_file() else None,
                diagnosis=row.get("diagnosis", ""),
                malignant=int(malignant) if malignant in ("0", "1") else None,
                split=splits.get(case_id, ""),
            )
        )
    return cases


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_extra_cases(data_dirs, holdout: list[CaseRecord] = ()) -> tuple[list[CaseRecord], list[str]]:
    """Extra training pairs (``--extra-data``): every image with a mask in each folder of the
    shared data format, split "train" whatever its own splits.csv says, its id prefixed by the
    folder's name so ids from different folders never collide.

    Left out, so a held-out case (``holdout``: the real `val` split) never enters training: a
    pair whose image has the bytes of a held-out image, whose id is a held-out id, or whose
    ``parent_id`` in labels.csv (synthetic pairs name the real case their mask came from) is a
    held-out id. Images without a mask are left out too. Returns (cases, one note per folder
    that lost pairs)."""
    held_ids = {c.id for c in holdout}
    held_digests = {_file_digest(c.image_path) for c in holdout}
    cases, notes, prefixes = [], [], set()
    for i, data_dir in enumerate(data_dirs):
        root = Path(data_dir)
        prefix = root.name if root.name not in prefixes else f"{root.name}-{i}"
        prefixes.add(prefix)
        parents = {r["id"]: r.get("parent_id", "") for r in _read_csv(root / "labels.csv")}
        found = read_cases(root)
        kept = [c for c in found if c.mask_path is not None and c.id not in held_ids
                and parents.get(c.id, "") not in held_ids and _file_digest(c.image_path) not in held_digests]
        if len(kept) < len(found):
            notes.append(f"{root}: {len(found) - len(kept)} of {len(found)} images left out "
                         "(no mask, or a held-out case's image, id or parent)")
        cases += [dataclasses.replace(c, id=f"{prefix}/{c.id}", split="train") for c in kept]
    return cases, notes
