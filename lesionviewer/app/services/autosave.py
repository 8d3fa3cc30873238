"""Autosave of edits into the case's sidecar, on one background thread, in order.

The GUI thread hands over a snapshot (mask copy + version number); the save runs in a
one-thread pool (encoding a 50 MP mask PNG takes a while), and the result comes back as a
GUI-thread signal. A case counts as saved only when the version saved is still the newest.

When: at most :data:`AUTOSAVE_DELAY_MS` after the first unsaved change, however busy the user
is (the timer is started by the first change and not restarted by the next ones), and at once
on leaving a case, when the app loses the focus, and on quitting.

Another lesionviewer may have the same case open. Each save says which saved states this app
has seen (``CaseSidecar.replaces``); a sidecar saved by someone else meanwhile is kept, and
this app's edits go to a conflict copy from then on, with a message saying so.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from lesionviewer.io import presence
from lesionviewer.io.sidecar import (CaseSidecar, SaveOutcome, save_sidecar,
                                     write_sidecar_file)

log = logging.getLogger(__name__)
AUTOSAVE_DELAY_MS = 1000  # the first unsaved change is on disk within this (plus the save)


class _SaveSignals(QObject):
    saved = Signal(object, int, object)  # image path, version, sidecar path
    failed = Signal(object, int, str)  # image path, version, message
    notice = Signal(object, str, str)  # image path, message, level


class _SaveJob(QRunnable):
    def __init__(self, saver: "Autosaver", sidecar: CaseSidecar, image_path: Path, version: int):
        super().__init__()
        self.saver, self.sidecar, self.image_path, self.version = saver, sidecar, image_path, version

    def run(self) -> None:
        if self.saver.superseded(self.image_path, self.version):
            return  # a newer snapshot of this case is queued behind: save that one only
        try:
            outcome = self.saver.save_blocking(self.sidecar, self.image_path)
        except Exception as exc:  # OSError mostly; anything else must reach the user too
            log.exception("autosave of %s failed", self.image_path)
            self.saver.signals.failed.emit(self.image_path, self.version,
                                           f"Your edits to '{self.image_path.name}' could not "
                                           f"be saved: {exc}")
        else:
            log.info("saved edits of %s to %s", self.image_path.name, outcome.path)
            self.saver.signals.saved.emit(self.image_path, self.version, outcome.path)


class _Call(QRunnable):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def run(self) -> None:
        try:
            self.fn()
        except Exception:  # a marker file is a courtesy; it must never break saving
            log.exception("open-case marker")


class Autosaver(QObject):
    saved = Signal(object, int, object)
    failed = Signal(object, int, str)
    notice = Signal(object, str, str)  # image path, one-line message, level

    def __init__(self, fallback_dir: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.fallback_dir = fallback_dir
        self.signals = _SaveSignals(self)
        self.signals.saved.connect(self.saved)
        self.signals.failed.connect(self.failed)
        self.signals.notice.connect(self.notice)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # saves of one case must land in order
        self._lock = threading.Lock()  # guards the three dicts (GUI and save threads)
        self._seen: dict[Path, tuple[str, ...]] = {}  # per photo: its saved states seen here
        self._copies: dict[Path, Path] = {}  # per photo: this app's conflict copy
        self._newest: dict[Path, int] = {}  # per photo: the newest version handed over
        self.owner = uuid.uuid4().hex  # tells this window's open-case markers from others'
        self._claimed: set[Path] = set()  # photos marked as open here

    # --- "this case is open here" markers (io.presence), on the save thread ----------------
    def claim(self, image_path: Path) -> None:
        """Mark the photo as open here; tell the user if another lesionviewer has it open."""
        self._pool.start(_Call(lambda: self._claim(image_path)))

    def release(self, image_path: Path) -> None:
        self._pool.start(_Call(lambda: self._release(image_path)))

    def release_all(self) -> None:
        """Quitting: remove every marker this window made (blocking)."""
        self._pool.waitForDone(5_000)
        with self._lock:
            claimed, self._claimed = list(self._claimed), set()
        for path in claimed:
            presence.release(path, self.owner)

    def _claim(self, image_path: Path) -> None:
        other = presence.claim(image_path, self.owner)
        if other is None:
            with self._lock:
                self._claimed.add(image_path)
            return
        self.signals.notice.emit(image_path, (
            f"'{image_path.name}' is also open in another lesionviewer "
            f"({presence.describe(other)}). Edits made in both are kept: the later save goes "
            f"to a separate copy, and that window says so."), "warning")

    def _release(self, image_path: Path) -> None:
        with self._lock:
            if image_path not in self._claimed:
                return
            self._claimed.discard(image_path)
        presence.release(image_path, self.owner)

    def adopt(self, image_path: Path, sidecar: CaseSidecar | None) -> None:
        """The edits on screen for this photo start from ``sidecar`` (None: none was found),
        so saving over it (and only it) is fine."""
        seen = () if sidecar is None else (sidecar.replaces or (sidecar.save_id,))
        with self._lock:
            self._seen[image_path] = tuple(s for s in seen if s)

    def save(self, sidecar: CaseSidecar, image_path: Path, version: int) -> None:
        with self._lock:
            self._newest[image_path] = max(version, self._newest.get(image_path, version))
        self._pool.start(_SaveJob(self, sidecar, image_path, version))

    def superseded(self, image_path: Path, version: int) -> bool:
        with self._lock:
            return self._newest.get(image_path, version) > version

    def save_now(self, sidecar: CaseSidecar, image_path: Path) -> str | None:
        """Blocking save (quitting): returns None, or the message saying why it failed."""
        self._pool.waitForDone(10_000)
        try:
            self.save_blocking(sidecar, image_path)
        except Exception as exc:
            log.exception("final save of %s failed", image_path)
            return f"Your edits to '{image_path.name}' could not be saved: {exc}"
        return None

    def save_blocking(self, sidecar: CaseSidecar, image_path: Path) -> SaveOutcome:
        """Save in this thread: in place, or into this app's conflict copy once there is one."""
        with self._lock:
            copy = self._copies.get(image_path)
            sidecar.replaces = self._seen.get(image_path, ())
        if copy is not None:
            write_sidecar_file(sidecar, copy)
            return SaveOutcome(copy, sidecar.save_id, [], "conflict copy")
        outcome = save_sidecar(sidecar, image_path, self.fallback_dir)
        with self._lock:
            if outcome.conflict is None:
                self._seen[image_path] = sidecar.replaces or ()
            else:
                self._copies[image_path] = outcome.path
        name = image_path.name
        for problem in outcome.problems:
            self.signals.notice.emit(image_path, (
                f"The earlier saved edits of '{name}' could not be read ({problem.reason}); "
                f"they are kept as '{problem.kept_as.name}' and your edits are saved."),
                "warning")
        if outcome.conflict is not None:
            self.signals.notice.emit(image_path, (
                f"'{name}' was not saved over: {outcome.conflict}. Those edits are kept, and "
                f"yours are saved beside them as '{outcome.path.name}'."), "warning")
        return outcome

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self._pool.waitForDone(timeout_ms)


class SessionSaving:
    """The session's side of autosave (mixed into CaseSession: uses its ``current``, ``cases``,
    ``autosaver`` and ``message``; :meth:`_init_saving` makes the rest)."""

    def _init_saving(self) -> None:
        self._autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._autosave_timer.timeout.connect(self.autosave_current)
        self._notices: list[tuple[str, str]] = []
        self._told: set[str] = set()
        self._notice_timer = QTimer(self, singleShot=True, interval=300)
        self._notice_timer.timeout.connect(self._report_notices)
        self.autosaver.saved.connect(self._on_saved)
        self.autosaver.failed.connect(self._on_save_failed)
        self.autosaver.notice.connect(lambda path, text, level: self.tell(text, level))
        app = QGuiApplication.instance()
        if app is not None:  # the user turns to another program: save what is on screen
            app.applicationStateChanged.connect(self._on_application_state)

    def schedule_autosave(self) -> None:
        """A change was made: save within AUTOSAVE_DELAY_MS of the first unsaved one (later
        changes ride along; restarting the timer on each would never save a busy user)."""
        if not self._autosave_timer.isActive():
            self._autosave_timer.start()

    def _on_application_state(self, state) -> None:
        if state != Qt.ApplicationState.ApplicationActive:
            self.autosave_current()

    def tell(self, text: str, level: str = "warning") -> None:
        """Show a message about saved edits once per session; several close together are
        shown as one (the message bar holds one at a time)."""
        if text in self._told:
            return
        self._told.add(text)
        self._notices.append((text, level))
        self._notice_timer.start()

    def _report_notices(self) -> None:
        notices, self._notices = self._notices, []
        if len(notices) == 1:
            self.message.emit(notices[0][0], notices[0][1], None)
        elif notices:
            level = "error" if any(lv == "error" for _, lv in notices) else "warning"
            self.message.emit(f"{len(notices)} notes about saved edits (all in the log): "
                              + notices[0][0] + f" (and {len(notices) - 1} more)", level, None)

    def restore_from_sidecar(self, case, info) -> None:
        """The case list's figures from the sidecar (``SidecarInfo``) until an analysis comes:
        an edited case is not analysed in the background, so it would show none (an unedited
        one is, and gets them from the cache)."""
        for text in info.problems:
            self.tell(text)
        summary = info.analysis_summary
        if summary and info.has_mask and case.ged is None and case.malignancy_probability is None:
            case.ged = summary.get("ged")
            case.malignancy_probability = summary.get("malignancy_probability")
            if hasattr(case, "malignancy_withheld"):
                case.malignancy_withheld = summary.get("malignancy_withheld")

    def adopt_saved_edits(self, case, bundle, kept_in_memory: bool) -> None:
        """The photo is loaded: report its sidecar's problems, and unless this app holds edits
        of its own for it (unsaved, or an editor kept from a moment ago), its saves may replace
        the sidecar just read, and nothing else."""
        for text in bundle.sidecar_problems:
            self.tell(text)
        self.autosaver.claim(case.path)
        sidecar = bundle.sidecar
        saved = None if sidecar is None else sidecar.edited_mask
        shape = bundle.image.rgb.shape[:2]
        if saved is not None and saved.shape != shape:  # not shown, so never to be saved over
            self.tell(f"The saved edits of '{case.name}' are for a {saved.shape[1]}x"
                      f"{saved.shape[0]} picture but the photo opens as {shape[1]}x{shape[0]}: "
                      f"they are not shown and are kept; new edits go to a separate copy.")
            sidecar = None
        if not case.unsaved and not kept_in_memory:
            self.autosaver.adopt(case.path, sidecar)

    def sidecar_for(self, cur) -> CaseSidecar:
        editor, case = cur.editor, cur.case
        edited = editor is not None and editor.edited
        summary = None
        if case.ged is not None or case.malignancy_probability is not None:
            summary = {"ged": case.ged, "malignancy_probability": case.malignancy_probability,
                       "malignancy_withheld": getattr(case, "malignancy_withheld", None)}
        return CaseSidecar(
            image_file_name=case.name,
            content_hash=cur.bundle.content_hash,
            model_id=None if cur.analysis is None else cur.analysis.model_id,
            edited_mask=editor.mask.copy() if edited else None,
            roi=case.region,
            threshold=case.threshold,
            edit_summary=editor.undo_stack.summary.to_dict() if editor is not None else {},
            status=case.status.value,
            analysis_summary=summary,
        )

    def autosave_current(self) -> None:
        self._autosave_timer.stop()
        cur = self.current
        if cur is None or cur.bundle is None or not cur.case.unsaved:
            return
        cur.case.pending = self.sidecar_for(cur)
        self.autosaver.save(cur.case.pending, cur.case.path, cur.case.version)

    def _on_saved(self, path: Path, version: int, _where) -> None:
        case = self.cases.find(path)
        if case is not None:
            case.saved_version = max(case.saved_version, version)
            case.save_error = None
            if not case.unsaved:
                case.pending = None

    def _on_save_failed(self, path: Path, version: int, message: str) -> None:
        case = self.cases.find(path)
        if case is not None:
            case.save_error = message
        self.message.emit(message + " They are kept in memory; try File > Export.", "error", None)

    def finish(self) -> list[str]:
        """Quitting: save every unsaved case now; returns the messages of saves that failed."""
        self._autosave_timer.stop()
        cur = self.current
        if cur is not None and cur.bundle is not None and cur.case.unsaved:
            cur.case.pending = self.sidecar_for(cur)
        self.autosaver.wait()
        errors = []
        for case in self.cases.cases:
            if case.unsaved and case.pending is not None:
                error = self.autosaver.save_now(case.pending, case.path)
                if error is None:
                    case.saved_version = case.version
                else:
                    errors.append(error)
        return errors
