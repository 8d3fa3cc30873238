"""Per-case edit sidecars: the clinician's corrected mask and review state, kept next to the photo.

Layout next to ``photo.jpg``: ``photo.jpg.lesionviewer.json`` (this record) and, when the mask
was edited, ``photo.jpg.lesionviewer-mask.png`` (0/255). When the photo's folder cannot be
written (a read-only share, a CD, a locked archive) both go to a fallback folder (the app uses
``platformdirs.user_data_dir(...)/sidecars``) under a name made from the photo's absolute path,
so the same photo finds them again. The photo itself is never modified.

A sidecar belongs to the photo's bytes: one whose recorded SHA-256 no longer matches (the photo
was replaced or re-saved) is ignored with a logged warning, as is a damaged one.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from lesionviewer.io.atomic import atomic_write_bytes, write_json_atomic
from lesionviewer.io.export import encode_png
from lesionviewer.io.hashing import bytes_hash, content_hash
from lesionviewer.io.images import ImageLoadError, load_mask

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".lesionviewer.json"
MASK_SUFFIX = ".lesionviewer-mask.png"
SIDECAR_FORMAT = "lesionviewer-sidecar"
SIDECAR_FORMAT_VERSION = 1


class CaseStatus(str, enum.Enum):
    """Review state of a case, as shown in the case list."""

    NEW = "new"
    IN_PROGRESS = "in progress"
    REVIEWED = "reviewed"


@dataclasses.dataclass
class CaseSidecar:
    """What lesionviewer remembers about one photo between sessions.

    image_file_name: the photo's file name (no folder).
    content_hash: SHA-256 hex of the photo's bytes (:func:`lesionviewer.io.hashing.content_hash`).
    model_id: the model whose result was being edited, or None.
    edited_mask: HxW bool corrected mask (True = lesion), or None when not edited.
    roi: (x, y, w, h) region of interest in full-resolution pixels, or None.
    edit_summary: JSON-ready dict (:meth:`lesionviewer.edit.summary.EditSummary.to_dict`).
    status: a :class:`CaseStatus` value ("new", "in progress", "reviewed") or other text.
    saved_at: ISO 8601 UTC time of saving; :func:`save_sidecar` fills it in.
    app_version: lesionviewer version that wrote it; :func:`save_sidecar` fills it in.
    """

    image_file_name: str
    content_hash: str
    model_id: str | None = None
    edited_mask: np.ndarray | None = None
    roi: tuple[int, int, int, int] | None = None
    edit_summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    status: str = CaseStatus.NEW.value
    saved_at: str = ""
    app_version: str = ""


def sidecar_path_for(image_path: str | os.PathLike, fallback_dir: str | os.PathLike | None = None) -> Path:
    """Where the sidecar JSON for ``image_path`` lives: next to the photo, or, given
    ``fallback_dir``, the keyed name inside it (see the module text)."""
    image_path = Path(image_path)
    if fallback_dir is None:
        return image_path.with_name(image_path.name + SIDECAR_SUFFIX)
    return Path(fallback_dir) / (_fallback_key(image_path) + SIDECAR_SUFFIX)


def save_sidecar(
    sidecar: CaseSidecar, image_path: str | os.PathLike, fallback_dir: str | os.PathLike | None = None
) -> Path:
    """Write ``sidecar`` atomically next to the photo, or into ``fallback_dir`` when the photo's
    folder refuses the write. Fills in ``saved_at`` and ``app_version``; returns the JSON path.

    The mask PNG is written before the JSON (which records the mask's SHA-256), so a crash in
    between leaves the previous, consistent sidecar. Raises OSError when neither place can be
    written.
    """
    from lesionviewer import __version__

    image_path = Path(image_path)
    sidecar.saved_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
    sidecar.app_version = __version__
    try:
        return _write_pair(sidecar, sidecar_path_for(image_path))
    except OSError as exc:
        if fallback_dir is None:
            raise
        log.info("cannot write next to %s (%s); using %s", image_path.name, exc, fallback_dir)
    Path(fallback_dir).mkdir(parents=True, exist_ok=True)
    return _write_pair(sidecar, sidecar_path_for(image_path, fallback_dir))


def load_sidecar(
    image_path: str | os.PathLike,
    fallback_dir: str | os.PathLike | None = None,
    image_hash: str | None = None,
) -> CaseSidecar | None:
    """The newest valid sidecar for the photo (next to it or in ``fallback_dir``), or None.

    A sidecar whose content hash differs from the photo's, or that cannot be read, is skipped
    with a logged warning. Pass ``image_hash`` when already known to avoid hashing the photo.
    """
    image_path = Path(image_path)
    candidates = [sidecar_path_for(image_path)]
    if fallback_dir is not None:
        candidates.append(sidecar_path_for(image_path, fallback_dir))
    found: list[CaseSidecar] = []
    for json_path in candidates:
        if not json_path.is_file():
            continue
        if image_hash is None:
            try:
                image_hash = content_hash(image_path)
            except OSError as exc:
                log.warning("cannot read %s to check its sidecar: %s", image_path, exc)
                return None
        sidecar = _read_pair(json_path, image_hash)
        if sidecar is not None:
            found.append(sidecar)
    if not found:
        return None
    return max(found, key=lambda s: s.saved_at)


def delete_sidecar(image_path: str | os.PathLike, fallback_dir: str | os.PathLike | None = None) -> None:
    """Remove the photo's sidecar files wherever they are (e.g. "discard my edits")."""
    image_path = Path(image_path)
    places = [sidecar_path_for(image_path)]
    if fallback_dir is not None:
        places.append(sidecar_path_for(image_path, fallback_dir))
    for json_path in places:
        for path in (json_path, _mask_path(json_path)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def _fallback_key(image_path: Path) -> str:
    absolute = os.path.normcase(os.path.abspath(image_path))
    digest = hashlib.sha256(absolute.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{digest}_{image_path.name}"


def _mask_path(json_path: Path) -> Path:
    return json_path.with_name(json_path.name[: -len(SIDECAR_SUFFIX)] + MASK_SUFFIX)


def _write_pair(sidecar: CaseSidecar, json_path: Path) -> Path:
    mask_path = _mask_path(json_path)
    record: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_FORMAT_VERSION,
        "image_file_name": sidecar.image_file_name,
        "content_hash": sidecar.content_hash,
        "model_id": sidecar.model_id,
        "roi": list(sidecar.roi) if sidecar.roi is not None else None,
        "edit_summary": sidecar.edit_summary,
        "status": getattr(sidecar.status, "value", sidecar.status),
        "saved_at": sidecar.saved_at,
        "app_version": sidecar.app_version,
        "mask": None,
    }
    if sidecar.edited_mask is not None:
        mask = np.asarray(sidecar.edited_mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(f"the edited mask must be HxW, got {mask.shape}")
        png = encode_png(mask.astype(np.uint8) * 255)
        atomic_write_bytes(mask_path, png)
        record["mask"] = {
            "file_name": mask_path.name,
            "sha256": bytes_hash(png),
            "height": int(mask.shape[0]),
            "width": int(mask.shape[1]),
        }
    write_json_atomic(json_path, record)
    if sidecar.edited_mask is None:
        try:
            mask_path.unlink()  # a stale mask from an earlier save
        except FileNotFoundError:
            pass
    return json_path


def _read_pair(json_path: Path, image_hash: str) -> CaseSidecar | None:
    try:
        record = json.loads(json_path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("format") != SIDECAR_FORMAT:
            raise ValueError("not a lesionviewer sidecar")
        if int(record.get("format_version", 0)) > SIDECAR_FORMAT_VERSION:
            raise ValueError(f"written by a newer lesionviewer ({record.get('app_version')})")
        if record.get("content_hash") != image_hash:
            log.warning(
                "ignoring %s: the photo has changed since the edits were saved", json_path.name
            )
            return None
        mask = None
        mask_info = record.get("mask")
        if mask_info:
            mask_path = json_path.with_name(mask_info["file_name"])
            png = mask_path.read_bytes()
            if bytes_hash(png) != mask_info["sha256"]:
                raise ValueError(f"{mask_path.name} does not match the record")
            mask = load_mask(mask_path)
            if mask.shape != (int(mask_info["height"]), int(mask_info["width"])):
                raise ValueError(f"{mask_path.name} has the wrong size")
        roi = record.get("roi")
        return CaseSidecar(
            image_file_name=str(record["image_file_name"]),
            content_hash=str(record["content_hash"]),
            model_id=record.get("model_id"),
            edited_mask=mask,
            roi=tuple(int(v) for v in roi) if roi is not None else None,
            edit_summary=dict(record.get("edit_summary") or {}),
            status=str(record.get("status") or CaseStatus.NEW.value),
            saved_at=str(record.get("saved_at") or ""),
            app_version=str(record.get("app_version") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError, ImageLoadError) as exc:
        log.warning("ignoring damaged sidecar %s: %s", json_path, exc)
        return None
