"""The case store off the GUI thread: one store thread runs every call, in order.

The GUI never waits on the database. A call is a function of the open
:class:`~lesionviewer.store.CaseStore`; it runs on the single thread of a private pool (so
writes are serialized and land in the order they were made) and its result or error comes
back as a GUI-thread signal, handed to the caller's callback.

When the server goes away (:class:`StoreUnavailable`), writes are held in the store's
:class:`~lesionviewer.store.offline.WriteQueue` (a journal file in the app's data folder, so
they survive a restart too), reads fail at once instead of waiting on a network timeout each,
and a probe retries every :attr:`StoreService.probe_ms`. Once the server answers, the held
writes are written in order (a save on a stale parent comes back as a conflict, never a lost
update) and :attr:`StoreService.online_changed` says so.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from lesionviewer.store.states import Role, StoreUnavailable  # no SQLAlchemy behind these

log = logging.getLogger(__name__)
PROBE_MS = 3000  # while offline: how often the server is asked whether it is back
# Queue priorities (QThreadPool runs the highest first, in order within one): adding a big
# folder's cases must not hold up an edit's commit (2 s) or the review of the case on screen.
BACKGROUND, ON_SCREEN, WRITE, URGENT = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class StoreIdentity:
    """Who writes, where: the redacted URL (never a password), the user and the user's role."""

    url: str
    user: str
    role: Role

    @property
    def reviewer(self) -> bool:
        return self.role is Role.REVIEWER


@dataclasses.dataclass(frozen=True)
class Replayed:
    """Held writes written once the server was back: how many, the saves that turned out to
    be conflicts (both versions kept), and the writes the store refused for good, with why."""

    written: int
    conflicts: list  # SaveResult
    refused: list  # (journal entry, reason)


class _Signals(QObject):
    done = Signal(int, object, object)  # call id, result, exception (or None)
    opened = Signal(object)  # StoreIdentity
    online = Signal(bool, str)  # online, why not (redacted)
    held = Signal(int)  # writes held now
    replayed = Signal(object)  # Replayed: held writes written back


class _Jobs:
    """The store thread's work, highest priority first and strictly in hand-over order
    within one priority. QThreadPool's own queue does not keep that order (a sign-off was
    seen overtaking the edit handed over just before it), so each pool task only runs the
    next job from here."""

    def __init__(self):
        self._heap: list = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def put(self, priority: int, fn: Callable[[], None], skip: Callable[[], bool]) -> None:
        with self._lock:
            heapq.heappush(self._heap, (-priority, next(self._seq), fn, skip))

    def run_next(self) -> None:
        with self._lock:
            _p, _n, fn, skip = heapq.heappop(self._heap)
        if not skip():
            fn()


class _Job(QRunnable):
    def __init__(self, jobs: _Jobs):
        super().__init__()
        self.jobs = jobs

    def run(self) -> None:
        self.jobs.run_next()


class StoreService(QObject):
    """GUI-side handle of the store thread; see the module docstring."""

    opened = Signal(object)  # StoreIdentity: the store is open
    online_changed = Signal(bool, str)  # reachable or not, and why not (one sentence, redacted)
    held_changed = Signal(int)  # how many writes wait for the server
    replayed = Signal(object)  # Replayed: what the held writes came to once it was back

    def __init__(self, journal_path: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.journal_path = Path(journal_path)
        self.identity: StoreIdentity | None = None
        self.online = True
        self.held = 0
        self.probe_ms = PROBE_MS
        self._store = None  # touched only on the store thread
        self._url: str | None = None
        self._user: str | None = None
        self._settings_url: str | None = None
        self._data_dir: Path | None = None
        self.display_url = ""  # the store's URL without a password, once resolved
        self._queue = None  # WriteQueue, made on the store thread
        self._offline = threading.Event()  # set on the store thread, read there too
        self._case_ids: dict[Path, int] = {}  # store thread only: photo -> store case id
        self._parents: dict[int, int | None] = {}  # store thread only: parent of the next save
        self._closing = False
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one thread: calls run (and writes land) in order
        self._pool.setExpiryTimeout(-1)  # and it stays the same thread (SQLite connections)
        self._jobs = _Jobs()  # the order they run in (see _Jobs)
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done)
        self._signals.opened.connect(self._on_opened)
        self._signals.online.connect(self._on_online)
        self._signals.held.connect(self._on_held)
        self._signals.replayed.connect(self.replayed)
        self._probe_timer = QTimer(self, singleShot=True)
        self._probe_timer.timeout.connect(self.probe)

    # --- GUI side --------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.identity is not None

    def open(self, url: str | None, user: str | None, settings_url: str | None = None,
             data_dir: Path | None = None) -> None:
        """Open (and migrate) the store on the store thread; :attr:`opened` or
        :attr:`online_changed` (False) tells the outcome. ``url`` None: resolved there from
        $LESIONVIEWER_DB, ``settings_url``, or ``cases.sqlite`` in ``data_dir`` (the default
        folder when None). ``user`` None: the OS login; a team store (PostgreSQL) always
        records the database login instead."""
        self._url, self._user = url, user or None
        self._settings_url, self._data_dir = settings_url, data_dir
        self._start(self._open_here, URGENT)

    def call(self, fn: Callable[[Any], Any], on_done: Callable[[Any], None] | None = None,
             on_error: Callable[[BaseException], None] | None = None,
             priority: int = ON_SCREEN) -> int:
        """Run ``fn(store)`` on the store thread (a read, or a write that need not be held);
        ``on_done(result)`` / ``on_error(exception)`` run on the GUI thread."""
        call_id = next(self._ids)
        self._callbacks[call_id] = (on_done, on_error)
        self._start(lambda: self._run_call(call_id, fn), priority)
        return call_id

    def write_for(self, path: Path, op: str, *args,
                  on_done: Callable[[Any], None] | None = None,
                  on_error: Callable[[BaseException], None] | None = None, priority: int = WRITE,
                  **kwargs) -> int:
        """``store.<op>(case_id, *args, **kwargs)`` (save_mask, record_analysis) for the photo
        at ``path`` (added to the store first if need be). ``save_mask`` gets its parent here, on the store thread: the
        version this app saved last for the case, else the newest of the user's seen when the
        case was opened (:meth:`note_base`), so a save made meanwhile elsewhere is a conflict.
        Held when the server is gone; a photo never added fails with StoreUnavailable."""
        call_id = next(self._ids)
        self._callbacks[call_id] = (on_done, on_error)
        self._start(lambda: self._run_write(call_id, op, args, kwargs, Path(path)), priority)
        return call_id

    def call_for(self, path: Path, fn: Callable[[Any, int], Any],
                 on_done: Callable[[Any], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 priority: int = ON_SCREEN) -> int:
        """``fn(store, case_id)`` for the photo at ``path`` (added first if need be)."""
        return self.call(lambda store: fn(store, self.case_id_here(Path(path))), on_done,
                         on_error, priority)

    # --- store thread helpers for call functions -------------------------------------------
    def case_id_here(self, path: Path) -> int:
        """(Store thread.) The store's id of the photo, adding it on first use."""
        case_id = self._case_ids.get(path)
        if case_id is None:
            case_id = self._case_ids[path] = self._store.add_case(path).id
        return case_id

    def note_base(self, case_id: int, version_id: int | None) -> None:
        """(Store thread.) The user's newest version as seen on opening the case: the parent
        of this app's first save, unless it saved one already."""
        self._parents.setdefault(case_id, version_id)

    def probe(self) -> None:
        """Ask the server whether it is back (and write what was held if so)."""
        self._start(self._probe_here, URGENT)

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Block until every call handed over so far has run (tests, quitting)."""
        return self._pool.waitForDone(timeout_ms)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Quitting: let the queued calls finish (bounded), then close the store."""
        self._closing = True
        self._probe_timer.stop()
        self._start(self._close_here, -1)  # after everything handed over
        return self._pool.waitForDone(timeout_ms)

    def _start(self, fn: Callable[[], None], priority: int = ON_SCREEN) -> None:
        # quitting: the writes still run; reads and a big folder's case adds queued behind
        # them are dropped (else quitting would wait for them)
        self._jobs.put(priority, fn, lambda: self._closing and 0 <= priority < WRITE)
        self._pool.start(_Job(self._jobs), priority)

    def _on_done(self, call_id: int, result, error) -> None:
        on_done, on_error = self._callbacks.pop(call_id, (None, None))
        if error is None:
            if on_done is not None:
                on_done(result)
        elif on_error is not None:
            on_error(error)
        else:
            log.warning("store call failed: %s", error)

    def _on_opened(self, identity: StoreIdentity) -> None:
        self.identity = identity
        self.opened.emit(identity)

    def _on_online(self, online: bool, why: str) -> None:
        changed = online != self.online
        self.online = online
        if not online and not self._closing:
            self._probe_timer.start(self.probe_ms)
        if changed:
            self.online_changed.emit(online, why)

    def _on_held(self, count: int) -> None:
        self.held = count
        self.held_changed.emit(count)

    # --- store thread ----------------------------------------------------------------------
    def _open_here(self) -> bool:
        from lesionviewer.store import CaseStore
        from lesionviewer.store.url import (DEFAULT_FILE, default_url, is_postgresql, redact,
                                            resolve_url)

        threading.current_thread().name = "case-store"
        url = resolve_url(self._url, self._settings_url)
        if url == default_url() and self._data_dir is not None:
            url = f"sqlite:///{(Path(self._data_dir) / DEFAULT_FILE).as_posix()}"
        self.display_url = redact(url)
        if self._store is not None:  # opened again (another URL or user): start afresh
            self._close_here()
            self._case_ids.clear()
            self._parents.clear()
        try:  # a team store records the database login, never a name from the settings
            self._store = CaseStore.open(url, user=None if is_postgresql(url) else self._user)
        except Exception as exc:  # unreachable, a bad URL, a newer schema: in the banner
            if not isinstance(exc, StoreUnavailable):
                log.exception("the case store could not be opened")
            self._went_offline(exc)
            return False
        self._signals.opened.emit(StoreIdentity(self._store.url_for_display, self._store.user,
                                                self._store.role))
        self._back_online()  # and writes held meanwhile (or by an earlier session)
        return True

    def _went_offline(self, exc: BaseException) -> None:
        self._offline.set()
        self._signals.online.emit(False, str(exc) or type(exc).__name__)

    def _run_call(self, call_id: int, fn) -> None:
        try:
            if self._store is None or self._offline.is_set():
                raise StoreUnavailable("the case store is not reachable")
            result = fn(self._store)
        except StoreUnavailable as exc:
            if not self._offline.is_set():
                self._went_offline(exc)
            self._signals.done.emit(call_id, None, exc)
        except Exception as exc:  # ReviewError, PermissionDenied, a bug: the caller says it
            self._signals.done.emit(call_id, None, exc)
        else:
            self._signals.done.emit(call_id, result, None)

    def _run_write(self, call_id: int, op: str, args: tuple, kwargs: dict,
                   path: Path | None = None) -> None:
        def resolved(case_id):  # the case id first, and save_mask's parent
            if path is None:
                return args, kwargs
            extra = {"parent_id": self._parents.get(case_id)} if op == "save_mask" else {}
            return (case_id, *args), {**kwargs, **extra}

        if self._store is not None and not self._offline.is_set():
            try:
                full_args, full_kwargs = resolved(
                    None if path is None else self.case_id_here(path))
                result = getattr(self._store, op)(*full_args, **full_kwargs)
            except StoreUnavailable as exc:
                self._went_offline(exc)
            except Exception as exc:
                self._signals.done.emit(call_id, None, exc)
                return
            else:
                if op == "save_mask":
                    self._parents[result.version.case_id] = result.version.id
                self._signals.done.emit(call_id, result, None)
                return
        case_id = None if path is None else self._case_ids.get(path)
        if path is not None and case_id is None:  # never reached the store: caller keeps it
            self._signals.done.emit(call_id, None,
                                    StoreUnavailable("the case store is not reachable"))
            return
        self._hold(op, *resolved(case_id))
        self._signals.done.emit(call_id, None, None)

    def _hold(self, op: str, args: tuple, kwargs: dict) -> None:
        queue = self._held_queue()
        getattr(queue, op)(self._store, *args, **kwargs)  # save_mask, record_analysis, ...
        self._signals.held.emit(len(queue.pending(self._store)))

    def _held_queue(self):
        if self._queue is None:
            from lesionviewer.store.offline import WriteQueue

            self._queue = WriteQueue(self.journal_path)
        return self._queue

    def _probe_here(self) -> None:
        if self._closing:
            return
        if self._store is None:
            self._open_here()
            return
        try:
            self._store.ping()  # one round trip: is the server there?
        except StoreUnavailable as exc:
            self._signals.online.emit(False, str(exc))
            return
        self._back_online()

    def _back_online(self) -> None:
        """The server answers: write what was held, in order, then say it is back."""
        self._offline.clear()
        report = None
        if self._queue is not None or self.journal_path.exists():
            queue, store = self._held_queue(), self._store
            try:
                if queue.pending(store):
                    report = queue.flush(store)
                    # the next save of a case follows the newest version the flush wrote
                    self._parents.update(report.newest_versions())
            except StoreUnavailable as exc:  # gone again half-way: the rest stays held
                self._went_offline(exc)
                self._signals.held.emit(len(queue.pending(store)))
                return
            except OSError as exc:  # an unreadable journal is left as it is, and said
                log.error("held writes: %s", exc)
            self._signals.held.emit(len(queue.pending(store)))
            if report is not None and report.remaining:
                self._went_offline(StoreUnavailable("the server went away while the held "
                                                    "writes were written"))
                return
        self._signals.online.emit(True, "")
        if report is not None:
            self._signals.replayed.emit(Replayed(
                len(report.written), list(report.conflicts), list(report.refused)))

    def _close_here(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                log.exception("closing the case store")
            self._store = None
