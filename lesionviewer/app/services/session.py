"""The open cases and the one on screen: opening, loading, analysis, edits, autosave.

Qt-side controller without widgets: it owns the case list model, the analysis service, the
image loader and the autosaver, and tells the window what to show through signals.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from lesionviewer.app.services.autosave import Autosaver, SessionSaving
from lesionviewer.app.services.case import Case, CaseStatus
from lesionviewer.app.views.case_list import CaseListModel
from lesionviewer.app.dirs import AppDirs
from lesionviewer.app.correction.editing import MaskEditor
from lesionviewer.app.services.loaders import ImageLoader, PhotoBundle
from lesionviewer.app.preferences import AppSettings
from lesionviewer.app.views.result_summary import withheld_reason
from lesionviewer.app.services.worker import AnalysisOutcome, AnalysisService
from lesionviewer.edit.mask_document import MaskDocument
from lesionviewer.edit.summary import EditSummary
from lesionviewer.io.images import find_images, resolved

log = logging.getLogger(__name__)
KEEP_EDITORS = 3  # cases whose mask and undo history stay in memory after leaving them


@dataclasses.dataclass(eq=False)
class OnScreen:
    """The case on screen and what has arrived for it so far."""

    case: Case
    request_id: int
    bundle: PhotoBundle | None = None
    outcome: AnalysisOutcome | None = None
    editor: MaskEditor | None = None
    cache_lookup: int | None = None  # id of the cache read under way for it, if any

    @property
    def analysis(self):
        return None if self.outcome is None else self.outcome.analysis


class CaseSession(SessionSaving, QObject):
    case_shown = Signal(object)  # OnScreen or None: a new case is on screen (photo loading)
    photo_ready = Signal(object)  # OnScreen: photo (and reference mask) loaded
    photo_failed = Signal(str)  # the photo on screen cannot be read: why
    result_ready = Signal(object)  # OnScreen: analysis (if any) and the editable mask are ready
    message = Signal(str, str, object)  # text, level ("info"/"warning"/"error"), actions or None

    def __init__(self, settings: AppSettings, dirs: AppDirs, model_dir: str | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.settings, self.dirs, self.model_dir = settings, dirs, model_dir
        self.cases = CaseListModel(self)
        self.service = AnalysisService(dirs.cache / "analyses", self)
        self.loader = ImageLoader(dirs.data / "sidecars", self)
        self.autosaver = Autosaver(dirs.data / "sidecars", self)
        self.current: OnScreen | None = None
        self._kept: OrderedDict[Path, MaskEditor] = OrderedDict()  # editors of cases just left
        self._failed_opens: list[str] = []
        self.background_paused = False  # the user cancelled: no folder analysis until "Analyse all"
        self._cancelled_case: Case | None = None  # on screen at Cancel: not analysed until F5
        self._report_timer = QTimer(self, singleShot=True, interval=400)
        self._report_timer.timeout.connect(self._report_failed_opens)
        signals = self.loader.signals
        signals.thumbnail_ready.connect(self._on_thumbnail)
        signals.thumbnail_failed.connect(self._on_thumbnail_failed)
        signals.image_ready.connect(self._on_image_ready)
        signals.image_failed.connect(self._on_image_failed)
        self._init_saving()  # autosave timer, save results, saving when the app loses focus
        s = self.service
        s.job_started.connect(lambda job: self._set_status(job.path, CaseStatus.ANALYSING, 0.0))
        s.progress.connect(lambda job, p: self._set_status(job.path, CaseStatus.ANALYSING,
                                                           p.step / max(p.total, 1)))
        s.finished.connect(self._on_analysis_finished)
        s.failed.connect(self._on_analysis_failed)
        s.cancelled.connect(lambda job: self._set_status(job.path, None, None))
        s.requeued.connect(lambda job: self._set_status(job.path, CaseStatus.QUEUED, None))
        s.model_ready.connect(self._on_model_ready)
        s.model_unavailable.connect(self._on_model_unavailable)
        s.cached.connect(self._on_cached)
        s.cache_missed.connect(self._on_cache_missed)

    # --- opening ---------------------------------------------------------------------------
    def open_paths(self, paths) -> list[Case]:
        """Add photos and folders (recursively) to the list; returns the cases for them."""
        self.background_paused = False  # newly opened photos: analyse them as usual
        files: list[Path] = []
        for p in map(Path, paths):
            try:
                if p.is_dir():
                    found = find_images(p, problems=self._failed_opens)
                    if not found:
                        self.message.emit(f"No photos were found in '{p}'.", "warning", None)
                    files += found
                elif p.exists() or p.is_symlink():  # a link loop is listed and marked 'error'
                    files.append(p)
                else:
                    self._failed_opens.append(f"Cannot open '{p.name}': it does not exist ({p}).")
            except OSError as exc:
                self._failed_opens.append(f"Cannot open '{p}': {exc}")
        if self._failed_opens:
            self._report_timer.start()
        unique = dict.fromkeys(resolved(f) for f in files)  # a link and its photo: one case
        cases = self.cases.add_cases([Case(f) for f in unique])
        self.loader.request_thumbnails([c.path for c in cases if c.thumbnail is None])
        return cases

    def _on_thumbnail(self, path: Path, thumbnail, info) -> None:
        case = self.cases.find(path)
        if case is None:
            return
        case.thumbnail = thumbnail
        if info is not None:
            case.region = info.roi
            case.edited = info.has_mask
            case.exported = info.status == CaseStatus.EXPORTED.value
            self.restore_from_sidecar(case, info)  # GED etc. in the list before any analysis
        case.refresh_status()
        self.cases.case_changed(case)
        if case.status == CaseStatus.NEW and self._background_on():
            self._analyse(case, foreground=False)

    def _on_thumbnail_failed(self, path: Path, message: str) -> None:
        case = self.cases.find(path)
        if case is not None:
            case.status, case.message = CaseStatus.ERROR, message
            self.cases.case_changed(case)
        self._failed_opens.append(message)
        self._report_timer.start()

    def _report_failed_opens(self) -> None:
        failed, self._failed_opens = self._failed_opens, []
        if len(failed) == 1:
            self.message.emit(failed[0], "error", None)
        elif failed:
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            self.message.emit(f"{len(failed)} files could not be opened and are marked 'error' in "
                              f"the list: " + " ".join(failed[:3]) + more, "error", None)

    # --- the case on screen ----------------------------------------------------------------
    def show_case(self, case: Case | None) -> None:
        if self.current is not None and self.current.case is case:
            return
        self.leave_current()
        self._cancelled_case = None
        self.current = None if case is None else OnScreen(case, self.loader.request_image(case.path))
        if self.current is not None:  # read a cached result alongside the photo's decoding
            job = self.service.find_cached(case.path, self.settings.analysis_settings(),
                                           region=case.region)
            self.current.cache_lookup = None if job is None else job.job_id
        self.case_shown.emit(self.current)

    def leave_current(self) -> None:
        cur = self.current
        if cur is None:
            return
        self._autosave_timer.stop()
        self.autosave_current()
        self.autosaver.release(cur.case.path)  # its "open here" marker
        if cur.editor is not None:  # kept a while, so coming back brings the undo history too
            cur.editor.detach()
            self._kept.pop(cur.case.path, None)
            self._kept[cur.case.path] = cur.editor
            while len(self._kept) > KEEP_EDITORS:
                self._kept.popitem(last=False)[1].deleteLater()

    def _on_image_ready(self, request_id: int, bundle: PhotoBundle) -> None:
        cur = self.current
        if cur is None or cur.request_id != request_id:
            return
        cur.bundle, case = bundle, cur.case
        case.size = (bundle.image.width, bundle.image.height)
        if case.status == CaseStatus.ERROR:
            case.status, case.message = CaseStatus.NEW, None
        sidecar = case.pending or bundle.sidecar
        if sidecar is not None:
            case.region = sidecar.roi
            case.threshold = sidecar.threshold
        self.adopt_saved_edits(case, bundle, case.path in self._kept)
        case.refresh_status()
        self.cases.case_changed(case)
        if bundle.reference_error:
            self.message.emit(f"Reference mask ignored: {bundle.reference_error}", "warning", None)
        self.photo_ready.emit(cur)
        self._show_or_analyse(cur)

    def _show_or_analyse(self, cur: OnScreen) -> None:
        """The photo is in: show the cached result, or wait for the cache's answer, or queue
        the analysis (the case on screen first)."""
        if cur.cache_lookup is not None:
            return  # _on_cached / _on_cache_missed come back here
        if cur.outcome is not None:
            self._make_editor(cur)  # found in the cache before the photo was decoded
        elif not self._analyse(cur.case, foreground=True, rgb=cur.bundle.image.rgb):
            self._make_editor(cur)  # no model: the mask can still be drawn by hand

    def _on_cached(self, outcome: AnalysisOutcome) -> None:
        cur = self.current
        if cur is None or cur.cache_lookup != outcome.job.job_id:
            return
        cur.cache_lookup = None
        if outcome.job.region != cur.case.region:  # the saved box differs: analyse that
            if cur.bundle is not None:
                self._show_or_analyse(cur)
            return
        self.service.drop_queued(cur.case.path)  # a background job for it would redo this
        self._on_analysis_finished(outcome)  # the list's figures; the mask if the photo is in
        if cur.bundle is None:
            cur.outcome = outcome  # shown as soon as the photo is decoded

    def _on_cache_missed(self, job) -> None:
        cur = self.current
        if cur is None or cur.cache_lookup != job.job_id:
            return
        cur.cache_lookup = None
        if cur.bundle is not None:
            self._show_or_analyse(cur)

    def _on_image_failed(self, request_id: int, path: Path, message: str) -> None:
        case = self.cases.find(path)
        if case is not None:
            case.status, case.message = CaseStatus.ERROR, message
            self.cases.case_changed(case)
        if self.current is not None and self.current.request_id == request_id:
            self.photo_failed.emit(message)
            self.message.emit(message, "error", None)

    def default_threshold(self) -> float:
        """The loaded model's consensus threshold (0.5 before a model is loaded)."""
        model = self.service.model
        return 0.5 if model is None else float(model.default_settings.threshold)

    def threshold_for(self, case: Case) -> float:
        """The case's own threshold when the user chose one, else the model's."""
        return self.default_threshold() if case.threshold is None else case.threshold

    def model_mask(self, cur: OnScreen) -> np.ndarray:
        """HxW bool: consensus probability >= threshold, or empty without an analysis."""
        a = cur.analysis
        if a is None:
            return np.zeros(cur.bundle.image.rgb.shape[:2], bool)
        threshold = self.threshold_for(cur.case)
        if a.settings.get("threshold") == threshold:
            return a.consensus_mask  # already made by the engine (saves a 50 MP comparison)
        return a.consensus_probability >= threshold

    def _make_editor(self, cur: OnScreen) -> None:
        model_mask = self.model_mask(cur)
        old = cur.editor
        kept = self._kept.pop(cur.case.path, None) if old is None else None
        if kept is not None and kept.document.shape == model_mask.shape:
            kept.attach()  # back to a case left a moment ago: same mask, same history
            kept.replace_model_mask(model_mask, keep_edits=True)
            self._show_editor(cur, kept)
            return
        if kept is not None:
            kept.deleteLater()
        if old is not None and old.edited:  # re-analysed under the user's edits: keep them
            old.replace_model_mask(model_mask, keep_edits=True)
            self.message.emit("The new result is in; your edits are kept.", "info",
                              [("Replace my edits with the new mask",
                                lambda: old.replace_model_mask(model_mask, keep_edits=False))])
            self.result_ready.emit(cur)
            return
        if old is not None:
            old.detach()
            old.deleteLater()
        sidecar = cur.case.pending or cur.bundle.sidecar
        saved = None if sidecar is None else sidecar.edited_mask
        start = saved if saved is not None and saved.shape == model_mask.shape else model_mask
        editor = MaskEditor(MaskDocument(start), model_mask, self,
                            edited=False if start is model_mask else None)  # saves a compare
        if start is saved:
            editor.undo_stack.summary = EditSummary.from_dict(sidecar.edit_summary)
        editor.step_done.connect(lambda e=editor: self._on_edit_step(e))
        self._show_editor(cur, editor)

    def _show_editor(self, cur: OnScreen, editor: MaskEditor) -> None:
        cur.editor = editor
        cur.case.edited = editor.edited
        cur.case.refresh_status()
        self.cases.case_changed(cur.case)
        self.result_ready.emit(cur)

    # --- edits and autosave ----------------------------------------------------------------
    def _on_edit_step(self, editor: MaskEditor) -> None:
        cur = self.current
        if cur is None or cur.editor is not editor:
            return
        self._mark_changed(cur.case)
        cur.case.edited = editor.edited
        cur.case.refresh_status()
        self.cases.case_changed(cur.case)

    def _mark_changed(self, case: Case) -> None:
        case.version += 1
        case.exported = False
        self.schedule_autosave()

    # --- analysis --------------------------------------------------------------------------
    @property
    def model_available(self) -> bool:
        return self.service.model is not None or self.service.model_loading

    def _analyse(self, case: Case, foreground: bool, rgb=None) -> bool:
        if not self.model_available or case.status == CaseStatus.ERROR and not foreground:
            return False
        if foreground and case is self._cancelled_case:
            return False  # its photo arrived after the user's Cancel
        job = self.service.submit(case.path, self.settings.analysis_settings(),
                                  region=case.region, rgb=rgb, foreground=foreground)
        if job is not self.service.running:  # else it is already being computed
            case.status, case.progress = CaseStatus.QUEUED, None
            self.cases.case_changed(case)
        return True

    def analyse_current(self) -> bool:
        cur = self.current
        if cur is None or cur.bundle is None:
            return False
        self._cancelled_case = None
        return self._analyse(cur.case, True, cur.bundle.image.rgb)

    def _background_on(self) -> bool:
        return self.settings.analyse_folder_in_background and not self.background_paused

    def cancel_analyses(self) -> None:
        """The user's Cancel: stop the running and queued analyses, and queue no more of the
        folder (thumbnails still arriving would) until "Analyse all", nor the case on screen
        (its photo may still be loading) until F5 or a new region."""
        self.background_paused = True
        self._cancelled_case = None if self.current is None else self.current.case
        self.service.cancel()
        cur = self.current
        if cur is not None and cur.bundle is not None and cur.editor is None:
            self._make_editor(cur)  # its analysis was cancelled: the mask can be drawn by hand

    def analyse_all(self) -> int:
        self.background_paused = False
        self._cancelled_case = None
        todo = [c for c in self.cases.cases if c.status in (CaseStatus.NEW, CaseStatus.ERROR)
                and c.thumbnail is not None]
        return sum(self._analyse(c, foreground=False) for c in todo)

    def reanalyse_all(self) -> None:
        """Settings changed: the case on screen first, then every readable case again."""
        self.analyse_current()
        for case in self.cases.cases:
            if case.thumbnail is not None and case.status != CaseStatus.ERROR:
                self._analyse(case, foreground=False)

    def _set_status(self, path: Path, status: CaseStatus | None, progress: float | None) -> None:
        case = self.cases.find(path)
        if case is None:
            return
        if status is None:  # cancelled: back to what is known
            case.status = CaseStatus.NEW
            case.refresh_status()
        else:
            case.status = status
        case.progress = progress
        self.cases.case_changed(case)

    def _on_analysis_finished(self, outcome: AnalysisOutcome) -> None:
        case = self.cases.find(outcome.job.path)
        if case is None:
            return
        a = outcome.analysis
        case.ged, case.malignancy_probability = a.ged, a.malignancy_probability
        case.malignancy_withheld = withheld_reason(a)
        case.status, case.progress, case.message = CaseStatus.NEW, None, None
        case.refresh_status()
        self.cases.case_changed(case)
        cur = self.current
        if cur is not None and cur.case is case and cur.bundle is not None \
                and outcome.job.region == case.region:
            cur.outcome = outcome
            self._make_editor(cur)

    def _on_analysis_failed(self, job, message: str) -> None:
        case = self.cases.find(job.path)
        if case is not None:
            case.status, case.message, case.progress = CaseStatus.ERROR, message, None
            self.cases.case_changed(case)
        if self.current is not None and self.current.case is case:
            self.message.emit(message, "error", None)
            if self.current.editor is None and self.current.bundle is not None:
                self._make_editor(self.current)

    def _on_model_ready(self, info) -> None:
        if self._background_on():
            for case in self.cases.cases:
                if case.status == CaseStatus.NEW and case.thumbnail is not None:
                    self._analyse(case, foreground=False)

    def _on_model_unavailable(self, message: str, missing: bool) -> None:
        cur = self.current
        if cur is not None and cur.bundle is not None and cur.editor is None:
            self._make_editor(cur)

    # --- region and threshold --------------------------------------------------------------
    def set_region(self, region) -> None:
        cur = self.current
        if cur is None or cur.case.region == (tuple(region) if region else None):
            return
        cur.case.region = tuple(region) if region else None
        self._mark_changed(cur.case)
        self._cancelled_case = None
        if cur.bundle is not None:
            self._analyse(cur.case, True, cur.bundle.image.rgb)

    def set_threshold(self, threshold: float | None) -> None:
        """The case on screen's threshold (None: back to the model's); saved with the case."""
        cur = self.current
        if cur is None:
            return
        if threshold is not None and abs(threshold - self.default_threshold()) < 1e-9:
            threshold = None  # the model's own value: follow the model
        if cur.case.threshold != threshold:
            cur.case.threshold = None if threshold is None else float(threshold)
            self._mark_changed(cur.case)
        threshold = self.threshold_for(cur.case)
        if cur.editor is None or cur.analysis is None:
            return
        editor, mask = cur.editor, self.model_mask(cur)
        if editor.read_only is not None:
            return  # signed off: the mask stays as signed (the threshold is kept for later)
        if not editor.edited:
            editor.replace_model_mask(mask, keep_edits=False)
            return
        editor.replace_model_mask(mask, keep_edits=True)
        self.message.emit(
            f"Your edits are kept; the threshold {threshold:.2f} applies to the model's mask.",
            "info", [("Replace my edits with the threshold mask",
                      lambda: editor.replace_model_mask(self.model_mask(cur), keep_edits=False))])

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        self.autosaver.release_all()
        self.loader.shutdown(timeout_ms)
        return self.service.shutdown(timeout_ms)
