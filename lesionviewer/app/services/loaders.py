"""Photo decoding off the GUI thread: full images for the viewer and list thumbnails.

A small QThreadPool (2 threads: the machines this runs on may have 2 cores and the analysis
thread needs one) runs plain QRunnables; results come back as queued signals of a QObject
that lives in the GUI thread, so slots run in the GUI thread.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from lesionviewer.io.images import (ImageLoadError, LoadedImage, load_image, load_mask,
                                    open_image_file, reference_mask_for)
from lesionviewer.app.views.geometry import mask_contours
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.sidecar import CaseSidecar, load_sidecar

log = logging.getLogger(__name__)
THUMBNAIL_PX = 112  # longest side; the list shows them at half size on HiDPI-friendly terms


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """HxWx3 uint8 RGB -> QImage that owns a copy of the pixels (safe to send across threads)."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()


def make_thumbnail(path: Path, size: int = THUMBNAIL_PX) -> np.ndarray:
    """HxWx3 uint8 RGB no larger than ``size`` on its longest side, upright.

    JPEGs are decoded at reduced scale (Pillow draft mode), so a 50 MP photo costs a fraction
    of a full decode; everything else goes through :func:`load_image`. Both refuse what
    load_image refuses (a FIFO is never opened, a damaged or oversized JPEG gets no grey
    preview). Raises ImageLoadError.
    """
    if path.suffix.lower() in (".jpg", ".jpeg"):
        im = open_image_file(path)  # ImageLoadError goes straight to the caller
        try:
            with im:
                im.draft("RGB", (size * 2, size * 2))
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((size, size), Image.Resampling.BILINEAR)
                return np.asarray(im).copy()
        except Exception as exc:  # let load_image produce the one-sentence message
            log.debug("fast thumbnail failed for %s: %r", path, exc)
    rgb = load_image(path).rgb
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    if scale >= 1:
        return rgb
    dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, dsize, interpolation=cv2.INTER_AREA)


@dataclasses.dataclass(frozen=True)
class SidecarInfo:
    """The light part of a sidecar, read for the case list (the mask is read on opening)."""

    status: str
    roi: tuple[int, int, int, int] | None
    has_mask: bool
    analysis_summary: dict | None = None  # GED etc. of the analysis the edits were made on
    problems: tuple[str, ...] = ()  # one line each: a sidecar that could not be used, and why


@dataclasses.dataclass(frozen=True)
class PhotoBundle:
    """Everything needed to put one case on screen."""

    image: LoadedImage
    reference_mask: np.ndarray | None  # HxW bool from <id>_mask.png, or None
    reference_error: str | None  # why a reference mask next to the photo could not be used
    sidecar: CaseSidecar | None  # autosaved edits, or None
    content_hash: str  # SHA-256 of the file (sidecars and the cache are keyed on it)
    reference_contours: list | None = None  # outline of reference_mask, for the overlay
    sidecar_problems: tuple[str, ...] = ()  # a sidecar that could not be used: why (1 line)


def _read_sidecar(path: Path, fallback_dir: Path | None, digest: str | None = None
                  ) -> tuple[CaseSidecar | None, tuple[str, ...]]:
    """The sidecar (or None) and a line for each one that could not be used."""
    problems: list = []
    try:
        sidecar = load_sidecar(path, fallback_dir, image_hash=digest, problems=problems)
    except Exception as exc:  # a broken sidecar must not stop the photo from opening
        log.exception("reading the sidecar of %s", path)
        return None, (f"The saved edits of '{path.name}' could not be read: {exc}",)
    return sidecar, tuple(p.message() for p in problems)


class LoaderSignals(QObject):
    thumbnail_ready = Signal(object, object, object)  # path, QImage, SidecarInfo | None
    thumbnail_failed = Signal(object, str)  # path, one-sentence message
    image_ready = Signal(int, object)  # request id, PhotoBundle
    image_failed = Signal(int, object, str)  # request id, path, message


class _ThumbnailJob(QRunnable):
    def __init__(self, path: Path, signals: LoaderSignals, fallback_dir: Path | None):
        super().__init__()
        self.path, self.signals, self.fallback_dir = path, signals, fallback_dir

    def run(self) -> None:
        try:
            thumb = rgb_to_qimage(make_thumbnail(self.path))
            sidecar, problems = _read_sidecar(self.path, self.fallback_dir)
            info = None if sidecar is None and not problems else SidecarInfo(
                "" if sidecar is None else sidecar.status, None if sidecar is None else sidecar.roi,
                sidecar is not None and sidecar.edited_mask is not None,
                None if sidecar is None else sidecar.analysis_summary, problems)
        except ImageLoadError as exc:
            self.signals.thumbnail_failed.emit(self.path, str(exc))
        except Exception as exc:
            log.exception("thumbnail of %s", self.path)
            self.signals.thumbnail_failed.emit(self.path, f"Cannot open '{self.path.name}': {exc}")
        else:
            self.signals.thumbnail_ready.emit(self.path, thumb, info)


class _ImageJob(QRunnable):
    def __init__(self, request_id: int, path: Path, signals: LoaderSignals,
                 fallback_dir: Path | None, latest: list[int]):
        super().__init__()
        self.request_id, self.path, self.signals = request_id, path, signals
        self.fallback_dir, self.latest = fallback_dir, latest

    def run(self) -> None:
        if self.latest[0] != self.request_id:
            return  # the user has moved on; nobody waits for this photo
        try:
            loaded: LoadedImage = load_image(self.path)
            reference, reference_error = None, None
            reference_path = reference_mask_for(self.path)
            if reference_path is not None:
                try:
                    reference = load_mask(reference_path, shape=loaded.rgb.shape)
                except ImageLoadError as exc:
                    reference_error = str(exc)
            digest = content_hash(self.path)
            sidecar, problems = _read_sidecar(self.path, self.fallback_dir, digest)
            bundle = PhotoBundle(loaded, reference, reference_error, sidecar, digest,
                                 None if reference is None else mask_contours(reference),
                                 problems)
        except ImageLoadError as exc:
            self.signals.image_failed.emit(self.request_id, self.path, str(exc))
        except Exception as exc:  # MemoryError on a huge photo, etc.
            log.exception("loading %s", self.path)
            self.signals.image_failed.emit(
                self.request_id, self.path, f"Cannot open '{self.path.name}': {exc}")
        else:
            self.signals.image_ready.emit(self.request_id, bundle)


class ImageLoader(QObject):
    """Queues decodes; the photo to show goes ahead of pending thumbnails."""

    def __init__(self, sidecar_fallback: Path | None, parent: QObject | None = None,
                 threads: int = 2):
        super().__init__(parent)
        self.sidecar_fallback = sidecar_fallback
        self.signals = LoaderSignals(self)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._ids = itertools.count(1)
        self._latest = [0]  # id of the newest image request, read by the pool threads

    def request_thumbnails(self, paths: list[Path]) -> None:
        for p in paths:
            self.pool.start(_ThumbnailJob(Path(p), self.signals, self.sidecar_fallback), priority=0)

    def request_image(self, path: Path) -> int:
        """Decode a photo for display. A request overtaken by a newer one before its turn is
        skipped (paging quickly through 50 MP photos must not decode every one passed)."""
        request_id = next(self._ids)
        self._latest[0] = request_id
        self.pool.start(_ImageJob(request_id, Path(path), self.signals, self.sidecar_fallback,
                                  self._latest), priority=10)
        return request_id

    def shutdown(self, timeout_ms: int = 3000) -> bool:
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)
