"""Writing the store's reviewed cases as a data set in the shared data format.

``lesionviewer cases export --out DIR`` writes, for every case with at least one rater's mask
(optionally only those in one review state):

* ``ID.jpg`` -- the photo's own bytes, copied (``ID.png`` etc. for other formats), never
  re-encoded;
* ``ID_mask.png`` -- the consensus mask, 8-bit 0/255 (ISIC convention): the majority vote
  of the raters' latest masks (:meth:`CaseStore.agreement`), or the only rater's mask;
* ``raters/<rater>/ID_mask.png`` -- each rater's latest mask. They sit in a folder per rater,
  not beside the photos as ``ID_mask_<rater>.png``, because lesionviewer's own readers
  (:func:`lesionviewer.training.cases.read_cases`, the app's folder scan) would take a
  name not ending in ``_mask`` for a photo;
* ``labels.csv`` -- ``id``, the case's labels (``diagnosis``, ``malignant``, ... as
  imported), then ``review_state``, ``state_by``, ``state_at``, ``signed_off_by``,
  ``raters`` (``;``-separated), ``consensus`` (how ``ID_mask.png`` was made),
  ``mean_pairwise_dice``, ``content_sha256`` and ``photo`` (the original file name).

With ``fmt="coco"`` the masks go into COCO files instead of PNGs: ``annotations.json``
(consensus, one RLE annotation per image; each image entry also carries ``review_state``,
``signed_off_by`` and ``raters``) and ``raters/<rater>.json``; photos and labels.csv as above.

The data set is written into a hidden folder beside ``DIR`` and renamed into place only when
every file is written, so a full disk or an unreadable photo leaves no partial data set. An
earlier export in ``DIR`` is replaced as a whole (a case no longer in the chosen state does
not linger); a folder holding anything else is refused, never emptied.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from lesionviewer.io.coco import coco_from_cases
from lesionviewer.io.export import json_bytes, mask_png, safe_case_stem
from lesionviewer.io.fileset import FileSet
from lesionviewer.store.states import ReviewState

FORMATS = ("isic", "coco")
STANDARD_LABELS = ("source", "diagnosis", "malignant", "label_source")
STORE_COLUMNS = ("review_state", "state_by", "state_at", "signed_off_by", "raters", "consensus",
                 "mean_pairwise_dice", "content_sha256", "photo")
PAGE = 500


class ExportError(Exception):
    """The data set could not be written; nothing of it was kept (the message says why)."""


@dataclasses.dataclass(frozen=True)
class ExportReport:
    out: Path
    cases: int  # cases written
    without_mask: int  # cases left out: no rater has drawn a mask yet
    raters: tuple[str, ...]
    files: int


def photo_path(photo_uri: str) -> Path:
    """The local path of a case's photo (a plain path or a ``file://`` URI)."""
    if photo_uri.startswith("file:"):
        return Path(unquote(urlparse(photo_uri).path))
    return Path(photo_uri)


def case_ids(store, state: ReviewState | None = None) -> list[int]:
    """Every case id in the store (or in ``state``), ascending."""
    ids: list[int] = []
    offset = 0
    while True:
        rows = store.review_queue(order="state", state=state, limit=PAGE, offset=offset)
        ids += [row.case_id for row in rows]
        if len(rows) < PAGE:
            return sorted(set(ids))
        offset += PAGE


def rater_counts(store) -> dict[str, int]:
    """{rater: number of cases they drew a mask on}, by name (one indexed query)."""
    from sqlalchemy import distinct, func, select

    from lesionviewer.store import db, schema as t

    mv = t.mask_versions.c
    query = select(mv.author, func.count(distinct(mv.case_id))).group_by(mv.author).order_by(mv.author)
    with db.reading(store._engine) as conn:
        return {author: int(n) for author, n in conn.execute(query)}


def analysis_recorded(store, case_id: int, summary: dict) -> bool:
    """Whether the case already holds an analysis with exactly this record (so importing an
    analysis JSON twice keeps one)."""
    from sqlalchemy import select

    from lesionviewer.io.atomic import to_json_ready
    from lesionviewer.store import db, schema as t

    wanted = to_json_ready(summary)
    query = select(t.analyses.c.summary).where(t.analyses.c.case_id == case_id)
    with db.reading(store._engine) as conn:
        return any(row.summary == wanted for row in conn.execute(query))


def _image_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return ".jpg" if suffix in (".jpg", ".jpeg", ".jpe") else suffix or ".jpg"


def _unique_stem(stem: str, taken: set[str], case_id: int) -> str:
    stem = safe_case_stem(stem)
    if stem.lower() in taken:  # two photos with one name (day1/case.jpg, day2/case.jpg)
        stem = safe_case_stem(f"{stem}_case{case_id}")
    taken.add(stem.lower())
    return stem


@dataclasses.dataclass
class _Case:
    stem: str
    record: object
    consensus: np.ndarray
    masks: dict  # rater -> HxW bool
    method: str
    mean_dice: float | None


def _cases(store, ids: list[int], skipped: list[int]) -> Iterator[_Case]:
    taken: set[str] = set()
    for case_id in ids:
        latest = store.latest_masks(case_id)
        if not latest:
            skipped.append(case_id)
            continue
        record = store.get_case(case_id)
        masks = {rater: np.asarray(v.mask, dtype=bool) for rater, v in sorted(latest.items())}
        agreement = store.agreement(case_id) if len(masks) >= 2 else None
        if agreement is not None:
            consensus, method = np.asarray(agreement.consensus, dtype=bool), agreement.method
            values = list(agreement.pairwise_dice.values())
            mean_dice = float(np.mean(values)) if values else None
        else:
            consensus, method, mean_dice = next(iter(masks.values())), "single rater", None
        yield _Case(_unique_stem(photo_path(record.photo_uri).stem, taken, case_id), record,
                    consensus, masks, method, mean_dice)


def _label_row(case: _Case) -> dict:
    record = case.record
    state = record.state
    signed = state is ReviewState.SIGNED_OFF
    row = {"id": case.stem, **{str(k): v for k, v in (record.labels or {}).items() if k != "id"}}
    row.update({
        "review_state": state.value,
        "state_by": record.state_by or "",
        "state_at": record.state_at.isoformat() if hasattr(record.state_at, "isoformat") else (record.state_at or ""),
        "signed_off_by": (record.state_by or "") if signed else "",
        "raters": ";".join(case.masks),
        "consensus": case.method,
        "mean_pairwise_dice": "" if case.mean_dice is None else f"{case.mean_dice:.4f}",
        "content_sha256": record.content_sha256,
        "photo": photo_path(record.photo_uri).name,
    })
    return row


def _labels_csv(rows: list[dict]) -> bytes:
    label_keys = sorted({k for row in rows for k in row} - {"id", *STORE_COLUMNS},
                        key=lambda k: (STANDARD_LABELS.index(k) if k in STANDARD_LABELS else len(STANDARD_LABELS), k))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["id", *label_keys, *STORE_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v)
                         for k, v in row.items()})
    return text.getvalue().encode("utf-8")


def export_dataset(store, out: str | Path, state: ReviewState | None = None, fmt: str = "isic",
                   refuse_empty: bool = False) -> ExportReport:
    """Write the store's cases (those in ``state``, or all) with masks into ``out``: a new
    or empty folder, or an earlier export, which is replaced as a whole (so no case left out
    this time lingers from the last one).

    Raises :class:`ExportError` (nothing written, ``out`` as it was) when ``out`` holds other
    files, a photo cannot be read, the folder cannot be written, or (``refuse_empty``) no
    case has a mask; ValueError for an unknown ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of: {', '.join(FORMATS)}")
    out = Path(out).absolute()
    _check_target(out)
    staging = out.with_name(f".{out.name}.export-{uuid.uuid4().hex[:8]}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        report = _write(store, staging, state, fmt, refuse_empty)
        _swap_in(staging, out)
    except OSError as exc:
        raise ExportError(f"cannot write the data set into '{out}': {exc.strerror or exc}; "
                          f"nothing was kept") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dataclasses.replace(report, out=out)


def _previous_export(out: Path) -> bool:
    """Whether ``out`` holds a data set this module wrote (its labels.csv columns)."""
    try:
        with open(out / "labels.csv", encoding="utf-8") as f:
            header = set(f.readline().strip().split(","))
    except (OSError, UnicodeDecodeError):
        return False
    return {"review_state", "content_sha256", "raters"} <= header


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"'{out}' is a file; give a folder for the data set")
    if out.is_dir() and any(out.iterdir()) and not _previous_export(out):
        raise ExportError(f"'{out}' holds other files; export into a new or empty folder, "
                          f"or into an earlier export (which it replaces)")


def _swap_in(staging: Path, out: Path) -> None:
    """Put the finished data set in place of ``out`` (renames only; the old one goes last)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
    try:
        os.replace(staging, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write(store, out: Path, state: ReviewState | None, fmt: str, refuse_empty: bool) -> ExportReport:
    """Write the data set into the new folder ``out`` (see :func:`export_dataset`)."""
    skipped: list[int] = []
    rows: list[dict] = []
    coco_images: list[tuple[str, np.ndarray, dict]] = []
    per_rater: dict[str, list[tuple[str, np.ndarray]]] = {}
    written: list[Path] = []
    with FileSet() as fileset:
        def put(path: Path, data: bytes) -> None:
            written.append(fileset.write(path, data))

        for case in _cases(store, case_ids(store, state), skipped):
            source = photo_path(case.record.photo_uri)
            try:
                photo = source.read_bytes()
            except OSError as exc:
                raise ExportError(f"case {case.record.id}: cannot read its photo '{source}': "
                                  f"{exc.strerror or exc}; nothing was written") from exc
            image_name = case.stem + _image_suffix(source)
            put(out / image_name, photo)
            row = _label_row(case)
            rows.append(row)
            for rater, mask in case.masks.items():
                per_rater.setdefault(rater, []).append((image_name, mask))
            if fmt == "isic":
                put(out / f"{case.stem}_mask.png", mask_png(case.consensus))
                for rater, mask in case.masks.items():
                    put(out / "raters" / safe_case_stem(rater) / f"{case.stem}_mask.png", mask_png(mask))
            else:
                coco_images.append((image_name, case.consensus, row))
        if refuse_empty and not rows:
            which = f" in state '{state.value}'" if state else ""
            raise ExportError(f"no case{which} has a mask yet ({len(skipped)} without one); nothing was written")
        if fmt == "coco":
            put(out / "annotations.json", json_bytes(_coco(coco_images)))
            for rater, cases in per_rater.items():
                put(out / "raters" / f"{safe_case_stem(rater)}.json",
                    json_bytes(coco_from_cases(cases, description=f"lesionviewer export: rater {rater}")))
        put(out / "labels.csv", _labels_csv(rows))
    return ExportReport(out, len(rows), len(skipped), tuple(sorted(per_rater)), len(written))


def _coco(images: list[tuple[str, np.ndarray, dict]]) -> dict:
    dataset = coco_from_cases([(name, mask) for name, mask, _ in images],
                              description="lesionviewer export: consensus masks")
    for entry, (_, _, row) in zip(dataset["images"], images):
        entry.update({"review_state": row["review_state"], "signed_off_by": row["signed_off_by"],
                      "raters": row["raters"].split(";") if row["raters"] else []})
    return dataset
