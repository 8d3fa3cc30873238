"""The session and the case store kept in step: every case opened is added, every analysis
recorded, every mask edit committed within :data:`COMMIT_DELAY_MS` (beside the sidecar
autosave, which stays), and the case on screen's review (state, raters, agreement, audit)
read back for the Review panel. All store work runs on the store thread
(:class:`~lesionviewer.app.review.store_service.StoreService`); this class only hands it over and
applies what comes back, on the GUI thread.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from lesionviewer.app.views.geometry import mask_contours
from lesionviewer.app.review.rater_overlay import RaterOutline
from lesionviewer.app.review.review_panel import when
from lesionviewer.app.review.store_service import BACKGROUND, WRITE, StoreService
from lesionviewer.store.states import (PermissionDenied, ReviewError, ReviewState,
                                       StoreUnavailable)

log = logging.getLogger(__name__)
COMMIT_DELAY_MS = 1000  # an edit is in the store within this plus the write (issue: 2 s)


@dataclasses.dataclass(frozen=True)
class RaterVersion:
    """A rater's newest mask of the case (without the mask itself)."""

    author: str
    number: int
    id: int
    created_at: object  # datetime


@dataclasses.dataclass(frozen=True)
class CaseReview:
    """What the Review panel shows for one case, read in one go on the store thread."""

    path: Path
    case_id: int
    record: object  # CaseRecord
    versions: list[RaterVersion]
    outlines: list[RaterOutline] = dataclasses.field(repr=False)
    agreement: object  # Agreement or None (fewer than two raters)
    audit: list[dict] = dataclasses.field(repr=False)
    role: object = None  # the user's Role in the store now (a reviewer may have granted one)

    def version_of(self, user: str) -> RaterVersion | None:
        return next((v for v in self.versions if v.author == user), None)


def read_review(service: StoreService, store, path: Path, case_id: int,
                elsewhere=None) -> CaseReview:
    """(Store thread.) The case's record, raters' newest versions with their outlines,
    agreement and audit trail; notes the user's newest version as the next save's parent.
    ``elsewhere``: a MaskVersion a save of this app conflicted with; outlined too while it is
    no longer its author's newest (both are kept, so both can be compared)."""
    from lesionviewer.store.agreement import agreement

    latest = store.latest_masks(case_id)
    mine = latest.get(store.user)
    service.note_base(case_id, None if mine is None else mine.id)
    versions = sorted((RaterVersion(v.author, v.number, v.id, v.created_at)
                       for v in latest.values()), key=lambda v: v.author.casefold())
    shown = list(latest.values())
    if elsewhere is not None and all(v.id != elsewhere.id for v in shown):
        shown.append(elsewhere)
    outlines = [RaterOutline(v.author, v.number, mask_contours(v.mask)) for v in shown]
    return CaseReview(path, case_id, store.get_case(case_id), versions, outlines,
                      agreement(latest) if len(latest) >= 2 else None,
                      store.audit(case_id, limit=200), store.role_of(store.user))


def added_case(store, case_id: int, photo: Path, fallback_dir: Path | None):
    """(Store thread.) The case's record, after taking in its edits from before the store
    (the sidecar autosave next to the photo, or in ``fallback_dir``) when the store holds no
    mask of it yet; the import itself never takes one sidecar save twice."""
    from lesionviewer.io.sidecar import sidecar_path_for

    sidecars = [sidecar_path_for(photo)] + (
        [sidecar_path_for(photo, fallback_dir)] if fallback_dir is not None else [])
    if any(p.is_file() for p in sidecars) and not store.latest_masks(case_id):
        report = store.import_sidecars([photo])
        for path, why in report.problems:
            log.warning("sidecar %s not imported: %s", path, why)
    return store.get_case(case_id)


class ReviewSync(QObject):
    review_ready = Signal(object)  # CaseReview of the case on screen
    message = Signal(str, str, object)  # text, level, actions (as CaseSession.message)
    committed = Signal(object)  # SaveResult of a mask commit (tests wait on it)
    case_updated = Signal(object)  # Case whose review fields changed
    role_changed = Signal()  # the user's role in the store is not the one opened with

    def __init__(self, session, service: StoreService, parent=None):
        super().__init__(parent)
        self.session, self.service = session, service
        self.sidecar_fallback = session.dirs.data / "sidecars"  # as the autosaver's
        self.review: CaseReview | None = None
        self.case_ids: dict[Path, int] = {}  # photo -> store case id, as far as known here
        self._editor = None
        self._dirty: dict[Path, object] = {}  # photo -> editor whose mask waits for a commit
        self._unsent: dict[Path, object] = {}  # photo -> mask the store never got (offline)
        self._recorded: set[tuple] = set()  # analyses recorded this session
        self._refused: set[Path] = set()  # photos whose commit the store refused (told once)
        self._opened_before = False
        self._committed: set[Path] = set()  # photos whose mask was sent this session
        self._last_sent: tuple[Path, object] | None = None  # (photo, HxW bool mask)
        self._elsewhere: dict[Path, object] = {}  # photo -> version a save conflicted with
        self._commit_timer = QTimer(self, singleShot=True, interval=COMMIT_DELAY_MS)
        self._commit_timer.timeout.connect(self.commit)
        self._refresh_timer = QTimer(self, singleShot=True, interval=150)
        self._refresh_timer.timeout.connect(self.refresh)
        cases = session.cases
        cases.rowsInserted.connect(lambda _p, first, last: self._add(cases.cases[first:last + 1]))
        session.case_shown.connect(self._on_case_shown)
        session.result_ready.connect(self._on_result_ready)
        session.service.finished.connect(self._record_analysis)
        session.service.cached.connect(self._record_analysis)
        service.online_changed.connect(self._on_online_changed)
        service.replayed.connect(self._on_replayed)
        service.opened.connect(self._on_opened)

    def _on_opened(self, _identity) -> None:
        """The store is open (again: maybe another one, or another user): every listed case
        is added (idempotent) and the case on screen read afresh."""
        if self._opened_before:  # another store or user: what was recorded is not there
            self._recorded.clear()
            self._refused.clear()
        self._opened_before = True
        self.case_ids.clear()
        self._add(self.session.cases.cases)
        self.refresh()

    # --- cases and analyses ----------------------------------------------------------------
    def _add(self, cases) -> None:
        for case in cases:
            self.service.call_for(case.path, lambda store, case_id, p=case.path: added_case(
                                      store, case_id, p, self.sidecar_fallback),
                                  lambda record, c=case: self._set_record(c, record),
                                  lambda exc: None,  # offline: added once it is back
                                  priority=BACKGROUND)

    def _set_record(self, case, record) -> None:
        self.case_ids[case.path] = record.id
        case.review_state = record.state.value
        self.case_updated.emit(case)

    def _record_analysis(self, outcome) -> None:
        analysis, path = outcome.analysis, outcome.job.path
        key = (path, analysis.model_id, repr(sorted(analysis.settings.items())),
               outcome.job.region)
        if key in self._recorded:
            return
        self._recorded.add(key)
        case = self.session.cases.find(path)
        summary = analysis.report()
        self.service.write_for(path, "record_analysis", summary,
                               on_done=lambda _r: self._after_write(path),
                               on_error=lambda exc, k=key: self._recorded.discard(k),
                               priority=BACKGROUND)
        if case is not None and case.review_state in (None, ReviewState.NEW.value):
            case.review_state = ReviewState.ANALYSED.value
            self.case_updated.emit(case)

    # --- the case on screen ----------------------------------------------------------------
    def _on_case_shown(self, cur) -> None:
        self.commit()  # the case left: its last edits go now, not in a second
        self.review = None
        self.review_ready.emit(None)
        self._watch_editor(None)
        if cur is not None:
            self.refresh()

    def _on_result_ready(self, cur) -> None:
        if cur is self.session.current:
            self._watch_editor(cur.editor)

    def _watch_editor(self, editor) -> None:
        if editor is self._editor:
            return
        if self._editor is not None:
            try:
                self._editor.step_done.disconnect(self._on_step)
            except (RuntimeError, TypeError):
                pass
        self._editor = editor
        if editor is not None:
            editor.step_done.connect(self._on_step)

    def _on_step(self) -> None:
        cur = self.session.current
        if cur is None or cur.editor is not self._editor:
            return
        path = cur.case.path
        if not self._editor.edited and not self._drawn_here(path):
            return  # the model's mask followed the threshold: nobody drew anything
        self._dirty[path] = self._editor
        if not self._commit_timer.isActive():  # not restarted: a busy user is saved too
            self._commit_timer.start()

    def _drawn_here(self, path: Path) -> bool:
        """Whether the user has a mask version of this case (so going back to the model's
        mask, by undo or reset, is a new version too)."""
        review, identity = self.review, self.service.identity
        return path in self._committed or (
            review is not None and review.path == path and identity is not None
            and review.version_of(identity.user) is not None)

    def refresh(self) -> None:
        """Read the review of the case on screen again (after a write, or on opening)."""
        cur = self.session.current
        if cur is None or not self.service.is_open:
            return
        path, elsewhere = cur.case.path, self._elsewhere.get(cur.case.path)
        self.service.call_for(path, lambda store, case_id: read_review(
            self.service, store, path, case_id, elsewhere), self._on_review,
            lambda exc: log.warning("the review of %s was not read: %s", path.name, exc))

    def _on_review(self, review: CaseReview) -> None:
        identity = self.service.identity
        if identity is not None and review.role is not None and review.role != identity.role:
            self.role_changed.emit()  # granted (or taken back) meanwhile: open it again
        self.case_ids[review.path] = review.case_id
        case = self.session.cases.find(review.path)
        if case is not None:
            case.review_state = review.record.state.value
            case.raters = tuple(v.author for v in review.versions)
            agreement = review.agreement
            case.disagreement = None if agreement is None else float(agreement.ged)
            self.case_updated.emit(case)
        cur = self.session.current
        if cur is not None and cur.case.path == review.path:
            self.review = review
            self.review_ready.emit(review)

    def _after_write(self, path: Path) -> None:
        cur = self.session.current
        if cur is not None and cur.case.path == path:
            self._refresh_timer.start()

    # --- mask commits ----------------------------------------------------------------------
    def commit(self) -> None:
        """Hand every edited mask waiting for the store to the store thread (a copy: the
        editor goes on changing it)."""
        self._commit_timer.stop()
        dirty, self._dirty = self._dirty, {}
        for path, editor in dirty.items():
            last = self._last_sent
            if last is not None and last[0] == path and np.array_equal(last[1], editor.mask):
                continue  # a step that changed nothing (a new model mask under the edits)
            self._send(path, editor.mask.copy())

    def _send(self, path: Path, mask) -> None:
        self._unsent.pop(path, None)
        self._committed.add(path)
        self._last_sent = (path, mask)  # the latest only: one mask's memory
        self.service.write_for(path, "save_mask", mask,
                               on_done=lambda result: self._on_committed(path, result),
                               on_error=lambda exc: self._on_commit_failed(path, mask, exc))

    def _on_committed(self, path: Path, result) -> None:
        if result is None:
            return  # held for the server (StoreService.held_changed says so)
        self._refused.discard(path)
        self._committed.add(path)
        self.committed.emit(result)
        case = self.session.cases.find(path)
        corrected = ReviewState.CORRECTED.value
        if case is not None and case.review_state not in (None, corrected):
            case.review_state = corrected
            self.case_updated.emit(case)
        if result.conflict is not None:
            self._tell_conflict(path, result)
        self._after_write(path)

    def _tell_conflict(self, path: Path, result) -> None:
        other, mine = result.conflict, result.version
        self._elsewhere[path] = other  # outlined beside the raters' newest (compare)
        who = "you, in another lesionviewer," if other.author == mine.author else other.author
        self.message.emit(
            f"'{path.name}': {who} saved a version of this mask at {when(other.created_at)} "
            f"while you were editing (their version {other.number}). Both are kept: yours is "
            f"version {mine.number} of {mine.author}. Compare the raters' outlines to see "
            "both.", "warning", [("Compare raters", lambda: self.compare_requested())])

    def compare_requested(self) -> None:
        """Overridden by the window: switch "compare raters" on."""

    def _on_commit_failed(self, path: Path, mask, exc: BaseException) -> None:
        if self._last_sent is not None and self._last_sent[0] == path:
            self._last_sent = None  # not in the store: the next step sends it again
        if isinstance(exc, StoreUnavailable):
            self._unsent[path] = mask  # the case never reached the store: sent once it is back
            return
        log.error("mask commit of %s failed: %s", path.name, exc)
        if path in self._refused:
            return  # said once; every further edit would say it again
        self._refused.add(path)
        self.message.emit(f"The edits of '{path.name}' could not be written to the case store: "
                          f"{exc}. They are kept in the sidecar file.", "error", None)

    # --- review moves ----------------------------------------------------------------------
    def set_state(self, state, comment: str = "") -> None:
        review = self.review
        if review is None:
            return
        path = review.path

        def failed(exc: BaseException) -> None:
            if isinstance(exc, (PermissionDenied, ReviewError)):
                self.message.emit(f"Not done: {exc}.", "warning", None)
            elif isinstance(exc, StoreUnavailable):
                self.message.emit("The case store is not reachable: the review move was not "
                                  "made.", "warning", None)
            else:
                self.message.emit(f"The review move failed: {exc}", "error", None)

        self.commit()  # edits not yet sent go first: a sign-off covers the mask on screen
        self.service.call_for(path, lambda store, case_id: store.set_state(
            case_id, state, comment or None), lambda _record: self._after_write(path), failed,
            priority=WRITE)

    # --- the server comes and goes ---------------------------------------------------------
    def _on_online_changed(self, online: bool, _why: str) -> None:
        if not online:
            return
        unsent, self._unsent = self._unsent, {}
        for path, mask in unsent.items():
            self._send(path, mask)
        self._add(self.session.cases.cases)  # cases opened while it was gone
        self.refresh()

    def _on_replayed(self, replayed) -> None:
        paths = {case_id: path for path, case_id in self.case_ids.items()}
        for result in replayed.conflicts:
            case_id = result.version.case_id
            self._tell_conflict(paths.get(case_id, Path(f"case {case_id}")), result)
        if replayed.refused:
            entry, reason = replayed.refused[0]
            self.message.emit(
                f"{len(replayed.refused)} held write(s) were refused by the case store "
                f"(first: {entry.get('op')} — {reason}); they are kept in the journal, and "
                "the edits in the sidecar files.", "warning", None)
        self.refresh()

    def fetch_disagreement(self) -> None:
        """The raters' disagreement of every listed case (for the rater queue): the store's
        queue rows of the listed cases, in one read."""
        ids = list(self.case_ids.values())

        def apply(rows) -> None:
            by_id = {row.case_id: row for row in rows}
            for case in self.session.cases.cases:
                row = by_id.get(self.case_ids.get(case.path))
                if row is not None and (row.disagreement != case.disagreement
                                        or row.state.value != case.review_state):
                    case.disagreement, case.review_state = row.disagreement, row.state.value
                    self.case_updated.emit(case)

        self.service.call(lambda store: store.queue_rows(ids), apply, lambda exc: None)
