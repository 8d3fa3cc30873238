"""Exporting a reviewed case: binary mask, probability and variance maps, overlay, JSON record.

All images are written from pixel arrays only (OpenCV PNG encoder), so no EXIF block, GPS
position or camera data from the original photo can reach an export. Every file is written
atomically (see :mod:`lesionviewer.io.atomic`).

Map encodings (16-bit grayscale PNG, value v in 0..65535):
  probability: ``p = v / 65535`` (consensus probability, 0..1).
  variance:    ``variance = v / 65535 / 4``. The variance of binary samples is at most 0.25
               (p * (1 - p) at p = 0.5), so it is multiplied by 4 (:data:`VARIANCE_SCALE`) to
               use the full 0..65535 range.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lesionviewer.engine.analysis import Analysis
from lesionviewer.io.atomic import atomic_write_bytes, to_json_ready, write_json_atomic
from lesionviewer.io.coco import coco_from_cases, mask_bbox, rle_decode, rle_encode
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.fileset import FileSet
from lesionviewer.io.naming import fit_name

__all__ = [
    "EXPORT_FORMAT_VERSION",
    "VARIANCE_SCALE",
    "FileSet",
    "atomic_write_bytes",
    "coco_from_cases",
    "export_case",
    "export_record",
    "rle_decode",
    "rle_encode",
    "save_map_png16",
    "save_mask_png",
    "save_overlay_png",
    "write_json_atomic",
]

EXPORT_FORMAT_VERSION = 1
#: Variance maps are stored as variance * 4 (binary-sample variance <= 0.25 -> 0..1).
VARIANCE_SCALE = 4.0
#: Overlay look: lesion filled with translucent cyan, outlined in yellow (both stand out on skin).
OVERLAY_FILL_RGB = (0, 255, 255)
OVERLAY_FILL_ALPHA = 0.30
OVERLAY_CONTOUR_RGB = (255, 255, 0)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an HxW (uint8/uint16) or HxWx3 uint8 RGB array; pixels only, no metadata."""
    if array.ndim == 3:
        array = np.ascontiguousarray(array[..., ::-1])  # OpenCV expects BGR
    ok, buffer = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"could not encode a {array.shape} {array.dtype} array as PNG")
    return buffer.tobytes()


def mask_png(mask: np.ndarray) -> bytes:
    """HxW bool mask -> 8-bit grayscale PNG bytes, 0 = background, 255 = lesion (ISIC)."""
    return encode_png(_as_mask(mask).astype(np.uint8) * 255)


def map_png16(values: np.ndarray, scale: float = 1.0) -> bytes:
    """HxW float map -> 16-bit grayscale PNG bytes of ``round(clip(values * scale, 0, 1) * 65535)``
    (NaN is written as 0)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"a map is HxW, got shape {values.shape}")
    scaled = np.clip(np.nan_to_num(values * scale, nan=0.0), 0.0, 1.0)
    return encode_png(np.rint(scaled * 65535).astype(np.uint16))


def json_bytes(obj: Any) -> bytes:
    """UTF-8 JSON as :func:`write_json_atomic` writes it (NaN -> null)."""
    import json

    text = json.dumps(to_json_ready(obj), indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def save_mask_png(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """HxW bool mask -> 8-bit grayscale PNG, 0 = background, 255 = lesion (ISIC convention)."""
    return atomic_write_bytes(path, mask_png(mask))


def save_map_png16(path: str | os.PathLike, values: np.ndarray, scale: float = 1.0) -> Path:
    """HxW float map -> 16-bit grayscale PNG of ``round(clip(values * scale, 0, 1) * 65535)``.

    Use ``scale=1`` for probabilities (0..1) and :data:`VARIANCE_SCALE` (4) for variance
    (0..0.25). NaN is written as 0.
    """
    return atomic_write_bytes(path, map_png16(values, scale))


def overlay_image(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB: the photo with the lesion filled translucently and outlined."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    mask = _as_mask(mask, rgb.shape[:2])
    out = rgb.copy()
    fill = np.array(OVERLAY_FILL_RGB, dtype=np.float32)
    blended = rgb[mask].astype(np.float32) * (1 - OVERLAY_FILL_ALPHA) + fill * OVERLAY_FILL_ALPHA
    out[mask] = np.rint(blended).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, round(min(mask.shape) / 300))
    cv2.drawContours(out, contours, -1, OVERLAY_CONTOUR_RGB, thickness, lineType=cv2.LINE_8)
    return out


def save_overlay_png(path: str | os.PathLike, rgb: np.ndarray, mask: np.ndarray) -> Path:
    """Write :func:`overlay_image` as an 8-bit RGB PNG, same size as the photo."""
    return atomic_write_bytes(path, encode_png(overlay_image(rgb, mask)))


def export_record(
    case_id: str,
    mask: np.ndarray,
    analysis: Analysis | None,
    edit_summary: Mapping[str, Any] | Any | None,
    source_path: str | os.PathLike | None = None,
    source_hash: str | None = None,
    files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON record written next to an export (also usable on its own).

    Holds the app version, source file name and SHA-256, mask size and lesion area, model id,
    settings, GED, malignancy probability, skin tone, the edit summary, how the maps are scaled,
    and the names of the exported files. ``edit_summary`` is a dict or anything with
    ``to_dict()`` (e.g. :class:`lesionviewer.edit.summary.EditSummary`).
    """
    from lesionviewer import __version__

    mask = _as_mask(mask)
    if source_path is not None and source_hash is None:
        source_hash = content_hash(source_path)
    if edit_summary is not None and hasattr(edit_summary, "to_dict"):
        edit_summary = edit_summary.to_dict()
    record: dict[str, Any] = {
        "format": "lesionviewer-export",
        "format_version": EXPORT_FORMAT_VERSION,
        "app_version": __version__,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "case_id": case_id,
        "source": {
            "file_name": Path(source_path).name if source_path is not None else None,
            "sha256": source_hash,
        },
        "mask": {
            "height": int(mask.shape[0]),
            "width": int(mask.shape[1]),
            "lesion_pixels": int(np.count_nonzero(mask)),
            "lesion_fraction": float(mask.mean()) if mask.size else 0.0,
            "bbox_xywh": mask_bbox(mask),
        },
        "edit_summary": dict(edit_summary) if edit_summary is not None else None,
        "maps": {
            "probability": "16-bit PNG; probability = value / 65535",
            "variance": f"16-bit PNG; variance = value / 65535 / {VARIANCE_SCALE:g}",
        },
        "files": dict(files or {}),
    }
    if analysis is None:
        record["analysis"] = None
    else:
        record["model_id"] = analysis.model_id
        record["settings"] = analysis.settings
        record["ged"] = analysis.ged
        report = analysis.report()  # a withheld malignancy figure is left out
        record["malignancy_probability"] = report["malignancy_probability"]
        record["skin_tone"] = report["skin_tone"]
        record["analysis"] = report
        record["mask"]["pixels_differing_from_model"] = int(
            np.count_nonzero(mask != np.asarray(analysis.consensus_mask, dtype=bool))
        )
    return to_json_ready(record)


def export_case(
    out_dir: str | os.PathLike,
    case_id: str,
    rgb: np.ndarray,
    mask: np.ndarray,
    analysis: Analysis | None,
    edit_summary: Mapping[str, Any] | Any | None,
    isic_naming: bool = False,
    source_path: str | os.PathLike | None = None,
    source_hash: str | None = None,
) -> dict[str, Path]:
    """Write one case's exports into ``out_dir`` (created if needed) and return their paths.

    rgb: HxWx3 uint8 RGB photo (upright, as displayed); mask: HxW bool final (edited) mask.
    Files, keyed in the returned dict:
      "mask": ``<id>_mask.png`` (``<id>_segmentation.png`` with ``isic_naming``), 0/255;
      "probability": ``<id>_probability.png`` and "variance": ``<id>_variance.png``, 16-bit
      maps (only when ``analysis`` is given; see the module text for their scale);
      "overlay": ``<id>_overlay.png``; "json": ``<id>.json`` (:func:`export_record`).
    ``case_id`` is used as a file-name stem (path separators are replaced by "_"; a name too
    long for the file system is shortened with a hash, see :func:`safe_case_stem`). The files
    are written as one :class:`FileSet`: all of them, or (a full disk, a read-only folder)
    none, with an earlier export of the case left as it was. Raises OSError when the folder
    cannot be written, ValueError when the shapes disagree.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"the photo must be HxWx3 uint8, got {rgb.shape} {rgb.dtype}")
    mask = _as_mask(mask, rgb.shape[:2])
    if analysis is not None and np.shape(analysis.consensus_probability) != mask.shape:
        raise ValueError(
            f"analysis maps are {np.shape(analysis.consensus_probability)}, the mask is {mask.shape}"
        )
    stem = safe_case_stem(case_id)
    out = Path(out_dir)
    names = {"mask": f"{stem}_segmentation.png" if isic_naming else f"{stem}_mask.png"}
    if analysis is not None:
        names["probability"] = f"{stem}_probability.png"
        names["variance"] = f"{stem}_variance.png"
    names["overlay"] = f"{stem}_overlay.png"
    names["json"] = f"{stem}.json"
    paths = {kind: out / name for kind, name in names.items()}
    record = export_record(
        case_id, mask, analysis, edit_summary, source_path, source_hash,
        files={kind: name for kind, name in names.items() if kind != "json"},
    )
    with FileSet() as files:
        files.write(paths["mask"], mask_png(mask))
        if analysis is not None:
            files.write(paths["probability"], map_png16(analysis.consensus_probability))
            files.write(paths["variance"], map_png16(analysis.variance, VARIANCE_SCALE))
        files.write(paths["overlay"], encode_png(overlay_image(rgb, mask)))
        files.write(paths["json"], json_bytes(record))
    return paths


def safe_case_stem(case_id: str) -> str:
    """A file-name stem from a case id: path separators and characters Windows forbids -> "_";
    a stem too long to take the longest ending is cut and given a hash (:func:`fit_name`)."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", str(case_id)).strip(" .")
    if not stem:
        raise ValueError(f"case id {case_id!r} gives an empty file name")
    return fit_name(stem)


def _as_mask(mask: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is HxW, got shape {mask.shape}")
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(f"the mask is {mask.shape}, the photo is {tuple(shape)}")
    return mask.astype(bool, copy=False)
