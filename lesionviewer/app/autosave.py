"""Autosave of edits into the case's sidecar, on one background thread, in order.

The GUI thread hands over a snapshot (mask copy + version number); the save runs in a
one-thread pool (encoding a 50 MP mask PNG takes a while), and the result comes back as a
GUI-thread signal. A case counts as saved only when the version saved is still the newest.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from lesionviewer.io.sidecar import CaseSidecar, save_sidecar

log = logging.getLogger(__name__)


class _SaveSignals(QObject):
    saved = Signal(object, int, object)  # image path, version, sidecar path
    failed = Signal(object, int, str)  # image path, version, message


class _SaveJob(QRunnable):
    def __init__(self, sidecar: CaseSidecar, image_path: Path, fallback: Path, version: int,
                 signals: _SaveSignals):
        super().__init__()
        self.sidecar, self.image_path, self.fallback = sidecar, image_path, fallback
        self.version, self.signals = version, signals

    def run(self) -> None:
        try:
            where = save_sidecar(self.sidecar, self.image_path, self.fallback)
        except Exception as exc:  # OSError mostly; anything else must reach the user too
            log.exception("autosave of %s failed", self.image_path)
            self.signals.failed.emit(self.image_path, self.version,
                                     f"Your edits to '{self.image_path.name}' could not be "
                                     f"saved: {exc}")
        else:
            log.info("saved edits of %s to %s", self.image_path.name, where)
            self.signals.saved.emit(self.image_path, self.version, where)


class Autosaver(QObject):
    saved = Signal(object, int, object)
    failed = Signal(object, int, str)

    def __init__(self, fallback_dir: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.fallback_dir = fallback_dir
        self._signals = _SaveSignals(self)
        self._signals.saved.connect(self.saved)
        self._signals.failed.connect(self.failed)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # saves of one case must land in order

    def save(self, sidecar: CaseSidecar, image_path: Path, version: int) -> None:
        self._pool.start(_SaveJob(sidecar, image_path, self.fallback_dir, version, self._signals))

    def save_now(self, sidecar: CaseSidecar, image_path: Path) -> str | None:
        """Blocking save (quitting): returns None, or the message saying why it failed."""
        self._pool.waitForDone(10_000)
        try:
            save_sidecar(sidecar, image_path, self.fallback_dir)
        except Exception as exc:
            log.exception("final save of %s failed", image_path)
            return f"Your edits to '{image_path.name}' could not be saved: {exc}"
        return None

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self._pool.waitForDone(timeout_ms)


class SessionSaving:
    """The session's side of autosave (mixed into CaseSession: uses its ``current``, ``cases``,
    ``autosaver``, ``message`` and ``_autosave_timer``)."""

    def sidecar_for(self, cur) -> CaseSidecar:
        editor = cur.editor
        edited = editor is not None and editor.edited
        return CaseSidecar(
            image_file_name=cur.case.name,
            content_hash=cur.bundle.content_hash,
            model_id=None if cur.analysis is None else cur.analysis.model_id,
            edited_mask=editor.mask.copy() if edited else None,
            roi=cur.case.region,
            edit_summary=editor.undo_stack.summary.to_dict() if editor is not None else {},
            status=cur.case.status.value,
        )

    def autosave_current(self) -> None:
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
