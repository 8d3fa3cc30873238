"""Export of one case or of the whole list, on a background thread (lesionviewer.io.export).

Each item carries what the GUI already has in memory (the case on screen); for the others the
worker reads the photo, the autosaved edits and the cached analysis itself. A case never
analysed and never edited has no mask to export and is listed as skipped.

Two photos with one name (``day1/case.jpg``, ``day2/case.jpg``) never share result files: the
photos' folders are mirrored under the export folder (relative to their common parent), and
the COCO file names each photo by that relative path. A case's files are written together or
not at all (a full disk leaves no partial set).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from lesionviewer.engine.analysis import Analysis
from lesionviewer.io.atomic import write_json_atomic
from lesionviewer.io.export import coco_from_cases, export_case
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.images import ImageLoadError, check_regular_file, load_image
from lesionviewer.io.naming import common_base, output_ids, unique_photos
from lesionviewer.io.sidecar import CaseSidecar, load_sidecar, save_sidecar

log = logging.getLogger(__name__)
COCO_FILE = "lesionviewer_coco.json"


@dataclasses.dataclass
class ExportItem:
    path: Path
    rgb: np.ndarray | None = None  # HxWx3 uint8, when already in memory
    mask: np.ndarray | None = None  # HxW bool final mask, when already in memory
    analysis: Analysis | None = None
    edit_summary: dict[str, Any] | None = None
    content_hash: str | None = None
    update_sidecar: bool = True  # record "exported" in the sidecar (not for the case on screen)


@dataclasses.dataclass
class ExportRequest:
    out_dir: Path
    items: list[ExportItem]
    isic_naming: bool
    coco: bool
    threshold: float  # the model's; a case's own threshold (in its sidecar) goes first
    cache_lookup: Any = None  # callable(path, content_hash) -> Analysis | None, thread-safe
    sidecar_fallback: Path | None = None


@dataclasses.dataclass
class ExportReport:
    out_dir: Path
    exported: list[Path]  # photos exported
    skipped: list[str]  # one sentence each
    failed: list[str]
    cancelled: bool = False
    coco_path: Path | None = None


class _Signals(QObject):
    progress = Signal(int, int, str)  # done, total, photo name
    finished = Signal(object)  # ExportReport


class _ExportJob(QRunnable):
    def __init__(self, request: ExportRequest, signals: _Signals, cancel: threading.Event):
        super().__init__()
        self.request, self.signals, self.cancel = request, signals, cancel

    def run(self) -> None:
        r = self.request
        report = ExportReport(r.out_dir, [], [], [])
        coco_cases = []
        names = _output_names([item.path for item in r.items])
        listed: set[Path] = set()
        for n, item in enumerate(r.items):
            if self.cancel.is_set():
                report.cancelled = True
                break
            self.signals.progress.emit(n, len(r.items), item.path.name)
            if item.path in listed:
                continue  # the same photo listed twice: exported once
            listed.add(item.path)
            case_id, coco_name = names.ids[n], names.coco[n]
            try:
                mask = self._export_one(item, case_id, report)
                if mask is not None:
                    coco_cases.append((coco_name, mask))
            except (ImageLoadError, OSError, ValueError) as exc:
                log.warning("export of %s: %s", item.path, exc)
                report.failed.append(str(exc) if isinstance(exc, ImageLoadError)
                                     else f"'{item.path.name}': {_reason(exc)}")
            except Exception as exc:
                log.exception("export of %s", item.path)
                report.failed.append(f"'{item.path.name}': {type(exc).__name__}: {exc}")
        if r.coco and coco_cases and not report.cancelled:
            try:
                report.coco_path = write_json_atomic(r.out_dir / COCO_FILE,
                                                     coco_from_cases(coco_cases))
            except OSError as exc:
                report.failed.append(f"COCO file: {_reason(exc)}")
        self.signals.finished.emit(report)

    def _export_one(self, item: ExportItem, case_id: str,
                    report: ExportReport) -> np.ndarray | None:
        r = self.request
        check_regular_file(item.path)  # a FIFO or link loop in the list is never opened
        digest = item.content_hash or content_hash(item.path)
        sidecar = None
        if item.mask is None or item.update_sidecar:
            sidecar = load_sidecar(item.path, r.sidecar_fallback, image_hash=digest)
        analysis = item.analysis
        if analysis is None and r.cache_lookup is not None:
            analysis = r.cache_lookup(item.path, digest)
        mask = item.mask
        if mask is None and sidecar is not None and sidecar.edited_mask is not None:
            mask = sidecar.edited_mask
        if mask is None and analysis is not None:
            own = None if sidecar is None else sidecar.threshold
            mask = analysis.consensus_probability >= (r.threshold if own is None else own)
        if mask is None:
            report.skipped.append(f"'{item.path.name}' has no mask yet (not analysed, not drawn).")
            return None
        rgb = item.rgb if item.rgb is not None else load_image(item.path).rgb
        if analysis is not None and analysis.consensus_probability.shape != mask.shape:
            analysis = None
        summary = item.edit_summary
        if summary is None and sidecar is not None:
            summary = sidecar.edit_summary
        folder, _, stem = case_id.rpartition("/")
        export_case(r.out_dir / folder if folder else r.out_dir, stem, rgb, mask, analysis,
                    summary, isic_naming=r.isic_naming, source_path=item.path, source_hash=digest)
        report.exported.append(item.path)
        if item.update_sidecar:
            record = sidecar or CaseSidecar(item.path.name, digest,
                                            analysis.model_id if analysis else None)
            record.status = "exported"
            try:
                save_sidecar(record, item.path, r.sidecar_fallback)
            except OSError as exc:  # the export itself succeeded
                log.warning("could not record the export of %s: %s", item.path.name, exc)
        return mask


@dataclasses.dataclass
class _OutputNames:
    """Per item: its output id (``sub/stem``, distinct within the export) and its COCO file
    name (the photo's path relative to the photos' common parent)."""

    ids: list[str]
    coco: list[str]


def _output_names(paths: list[Path]) -> _OutputNames:
    def key(p: Path) -> str:
        return os.path.normcase(os.path.abspath(p))

    found = unique_photos([(p, p.parent) for p in paths])
    by_path = {key(p): i for (p, _), i in zip(found, output_ids(found))}
    base = common_base([p.parent for p in paths])
    coco = []
    for p in paths:
        try:
            coco.append(Path(os.path.relpath(p, base)).as_posix() if base is not None else p.name)
        except ValueError:
            coco.append(p.name)
    return _OutputNames([by_path[key(p)] for p in paths], coco)


def _reason(exc: BaseException) -> str:
    """One sentence for the report: an OSError's own words without the temporary file name."""
    if isinstance(exc, OSError) and not isinstance(exc, ImageLoadError) and exc.strerror:
        return exc.strerror + "."
    return str(exc)


class Exporter(QObject):
    progress = Signal(int, int, str)
    finished = Signal(object)  # ExportReport

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._signals = _Signals(self)
        self._signals.progress.connect(self.progress)
        self._signals.finished.connect(self._on_finished)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._cancel: threading.Event | None = None

    @property
    def busy(self) -> bool:
        return self._cancel is not None

    def start(self, request: ExportRequest) -> None:
        self._cancel = threading.Event()
        self._pool.start(_ExportJob(request, self._signals, self._cancel))

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        self.cancel()
        return self._pool.waitForDone(timeout_ms)

    def _on_finished(self, report: ExportReport) -> None:
        self._cancel = None
        self.finished.emit(report)
