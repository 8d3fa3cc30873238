"""Analysis off the GUI thread: one worker QObject in one QThread, fed one job at a time.

The :class:`AnalysisService` lives in the GUI thread. It keeps the queue (the case on screen
first, the rest of the folder behind it), hands the worker one job, and re-emits the worker's
signals from the GUI thread, so callers (and tests) always wait on GUI-thread signals.

Shutdown never blocks on a queued call: cancel flags are plain ``threading.Event`` objects the
engine polls between steps, ``QThread.quit()`` is thread-safe and is called directly, and the
final ``wait`` has a deadline.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import (QCoreApplication, QObject, QRunnable, QThread, QThreadPool,
                            Signal, Slot)

from lesionviewer.app.views.geometry import DisplayData, prepare_display
from lesionviewer.app.views.result_summary import ged_cutoffs_of
from lesionviewer.engine.analysis import Analysis, AnalysisCancelled, AnalysisSettings

log = logging.getLogger(__name__)
_ORPHANED_THREADS: list[tuple[QThread, QObject]] = []  # threads that missed the shutdown deadline


@dataclasses.dataclass(frozen=True)
class AnalysisJob:
    job_id: int
    path: Path
    settings: AnalysisSettings
    region: tuple[int, int, int, int] | None = None
    seed: int = 0
    rgb: np.ndarray | None = dataclasses.field(default=None, repr=False)  # HxWx3 uint8, if loaded
    foreground: bool = False  # the case on screen: goes before background jobs


@dataclasses.dataclass(frozen=True)
class AnalysisOutcome:
    job: AnalysisJob
    analysis: Analysis
    display: DisplayData
    from_cache: bool
    seconds: float  # wall time of the job, cache look-up included


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    model_id: str
    device: str
    working_size: int
    default_settings: AnalysisSettings
    ged_cutoffs: tuple[float, float] | None = None  # fitted GED level cut-offs, if the model has them


def job_cache_key(content_hash: str, model_id: str, job: AnalysisJob) -> str:
    """Cache key of a job: photo bytes, model, settings, region, seed.

    The threshold is applied by the app on the consensus probability and the device does not
    change the result, so neither is part of the key.
    """
    from lesionviewer.io.cache import cache_key

    settings = job.settings.to_dict()
    settings.pop("threshold", None)
    settings.pop("device", None)
    return cache_key(content_hash, model_id, settings, job.region, job.seed)


MAX_TORCH_THREADS = 8


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def analysis_threads() -> int:
    """Torch threads for the analysis: every core but one (left to the GUI, decoding and the
    system), at least 1, at most MAX_TORCH_THREADS (more stops paying at this model's size).

    On a 2-core machine that is 1: with 2, the GUI and the photo decoders competing for the
    cores made one UNet pass take 1.9 s instead of 0.34 s. ``LESIONVIEWER_TORCH_THREADS``
    overrides it (benchmarks).
    """
    forced = os.environ.get("LESIONVIEWER_TORCH_THREADS", "").strip()
    if forced.isdigit() and int(forced) > 0:
        return int(forced)
    return max(1, min(MAX_TORCH_THREADS, _cores() - 1))


class AnalysisWorker(QObject):
    """Runs in the analysis thread. Only the service talks to it, through queued signals."""

    model_ready = Signal(object)  # ModelInfo
    model_unavailable = Signal(str, bool)  # message, True when simply no model is installed
    started = Signal(int)
    progress = Signal(int, object)  # job id, engine Progress
    finished = Signal(int, object)  # job id, AnalysisOutcome
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self, cache_dir: Path | None):
        super().__init__()
        self._cache_dir = cache_dir
        self._cache = None
        self._analyzer = None

    @Slot(object, str)
    def load_model(self, model_dir, device: str) -> None:
        threading.current_thread().name = "analysis"  # for the log file
        try:  # torch is imported here (or by main()'s early import), never on the GUI thread
            from lesionviewer.app import wait_for_engine_import

            wait_for_engine_import()
            import torch

            from lesionviewer.engine import Analyzer
            from lesionviewer.engine.checkpoint import NoModelInstalled, find_default_model

            torch.set_num_threads(analysis_threads())
            log.info("analysis on %d torch thread(s) of %d cores", torch.get_num_threads(),
                     _cores())

            gc.freeze()  # torch's many long-lived objects: keep later full collections short

            try:
                folder = Path(model_dir) if model_dir else find_default_model()
            except NoModelInstalled as exc:
                self._analyzer = None
                self.model_unavailable.emit(str(exc), True)
                return
            self._analyzer = Analyzer.from_dir(folder, device=device)
        except Exception as exc:  # ModelError has a one-sentence message; anything else too
            log.exception("model could not be loaded")
            self._analyzer = None
            self.model_unavailable.emit(f"The model could not be loaded: {exc}", False)
            return
        a = self._analyzer
        log.info("model %s loaded on %s", a.model_id, a.device)
        self.model_ready.emit(
            ModelInfo(a.model_name, a.model_id, a.device, a.working_size, a.default_settings,
                      ged_cutoffs_of(a.model.config))
        )

    def _open_cache(self):
        if self._cache is None and self._cache_dir is not None:
            from lesionviewer.io.cache import AnalysisCache

            self._cache = AnalysisCache(self._cache_dir)
        return self._cache

    @Slot(object, object)
    def run(self, job: AnalysisJob, cancel: threading.Event) -> None:
        from lesionviewer.io.images import ImageLoadError, load_image

        t0 = time.perf_counter()
        self.started.emit(job.job_id)
        try:
            if self._analyzer is None:
                raise RuntimeError("no model is loaded")
            cache, key = self._open_cache(), None
            if cache is not None:
                from lesionviewer.io.hashing import content_hash

                key = job_cache_key(content_hash(job.path), self._analyzer.model_id, job)
                analysis = cache.get(key)
            else:
                analysis = None
            from_cache = analysis is not None
            if analysis is None:
                rgb = job.rgb if job.rgb is not None else load_image(job.path).rgb
                if cancel.is_set():
                    raise AnalysisCancelled()
                analysis = self._analyzer.analyze(
                    rgb, settings=job.settings, seed=job.seed, region=job.region,
                    progress=lambda p: self.progress.emit(job.job_id, p),
                    cancelled=cancel.is_set,
                )
            display = prepare_display(analysis)
            outcome = AnalysisOutcome(job, analysis, display, from_cache, time.perf_counter() - t0)
            self.finished.emit(job.job_id, outcome)
            if cache is not None and not from_cache:  # after the user has the result
                try:
                    cache.put(key, analysis)
                except OSError as exc:  # a full disk must not cost anything else
                    log.warning("analysis cache not written: %s", exc)
        except AnalysisCancelled:
            self.cancelled.emit(job.job_id)
        except ImageLoadError as exc:
            self.failed.emit(job.job_id, str(exc))
        except Exception as exc:
            log.exception("analysis of %s failed", job.path)
            self.failed.emit(
                job.job_id, f"Analysis of '{job.path.name}' failed: {type(exc).__name__}: {exc}"
            )


class _CacheReadSignals(QObject):
    found = Signal(object)  # AnalysisOutcome
    missed = Signal(object)  # AnalysisJob


class _CacheReadJob(QRunnable):
    """Reads one analysis from the cache (and its overlays) on a pool thread: a result seen
    before shows at once instead of waiting behind the analysis queue."""

    def __init__(self, job: AnalysisJob, model_id: str, cache_dir: Path, latest: list[int],
                 signals: _CacheReadSignals, digest: str | None):
        super().__init__()
        self.job, self.model_id, self.cache_dir, self.latest = job, model_id, cache_dir, latest
        self.signals, self.digest = signals, digest

    def run(self) -> None:
        job, t0 = self.job, time.perf_counter()
        if self.latest[0] != job.job_id:
            return  # the user has paged on; nobody waits for this one
        try:
            from lesionviewer.io.cache import AnalysisCache
            from lesionviewer.io.hashing import content_hash

            digest = self.digest or content_hash(job.path)
            key = job_cache_key(digest, self.model_id, job)
            analysis = AnalysisCache(self.cache_dir).get(key)
            outcome = None if analysis is None else AnalysisOutcome(
                job, analysis, prepare_display(analysis), True, time.perf_counter() - t0)
        except Exception:  # an unreadable photo or cache: the analysis queue will say why
            log.exception("reading the cached analysis of %s", job.path)
            outcome = None
        if outcome is None:
            self.signals.missed.emit(job)
        else:
            self.signals.found.emit(outcome)


def _demoted(job: AnalysisJob) -> AnalysisJob:
    """The job as a background one (its photo left the screen): the worker re-reads the
    photo when its turn comes, so the decoded pixels need not wait in memory."""
    return dataclasses.replace(job, foreground=False, rgb=None) if job.foreground else job


class AnalysisService(QObject):
    """GUI-thread face of the analysis thread. All its signals are emitted in the GUI thread."""

    model_ready = Signal(object)  # ModelInfo
    model_unavailable = Signal(str, bool)  # message, no model installed at all
    job_started = Signal(object)  # AnalysisJob
    progress = Signal(object, object)  # AnalysisJob, engine Progress
    finished = Signal(object)  # AnalysisOutcome
    failed = Signal(object, str)  # AnalysisJob, message
    cancelled = Signal(object)  # AnalysisJob (not emitted for a job merely put back in the queue)
    requeued = Signal(object)  # AnalysisJob stopped to make way for the case on screen; queued
    busy_changed = Signal(bool)
    cached = Signal(object)  # AnalysisOutcome that find_cached found
    cache_missed = Signal(object)  # AnalysisJob that find_cached did not find

    _run_requested = Signal(object, object)
    _load_requested = Signal(object, str)

    def __init__(self, cache_dir: Path | None, parent: QObject | None = None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._pending: list[AnalysisJob] = []
        self._running: AnalysisJob | None = None
        self._cancel: threading.Event | None = None
        self._requeue_running = False
        self.model: ModelInfo | None = None
        self.model_loading = False
        self.unavailable_message: str | None = None
        self.model_missing = False  # True: no model installed at all (not a broken one)

        self._cache_dir = cache_dir
        self._reader = QThreadPool(self)  # cached results, never behind the analysis queue
        self._reader.setMaxThreadCount(1)
        self._latest_read = [0]
        self._read_signals = _CacheReadSignals(self)
        self._read_signals.found.connect(self.cached)
        self._read_signals.missed.connect(self.cache_missed)

        self._thread = QThread()
        self._thread.setObjectName("analysis")
        self._worker = AnalysisWorker(cache_dir)
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self._run_requested.connect(self._worker.run)
        self._load_requested.connect(self._worker.load_model)
        self._worker.model_ready.connect(self._on_model_ready)
        self._worker.model_unavailable.connect(self._on_model_unavailable)
        self._worker.started.connect(self._on_started)
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.start()
        app = QCoreApplication.instance()
        if app is not None:  # never let Python destroy a running QThread at exit
            app.aboutToQuit.connect(self.shutdown)

    # --- requests (GUI thread) -------------------------------------------------------------
    def load_model(self, model_dir: str | Path | None, device: str) -> None:
        self.model, self.model_loading, self.unavailable_message = None, True, None
        self._load_requested.emit(model_dir, device)

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._pending)

    @property
    def queued(self) -> int:
        """Jobs waiting behind the running one."""
        return len(self._pending)

    @property
    def running(self) -> AnalysisJob | None:
        return self._running

    def submit(self, path: Path, settings: AnalysisSettings, *, region=None, seed: int = 0,
               rgb: np.ndarray | None = None, foreground: bool = False) -> AnalysisJob:
        """Queue one analysis.

        A foreground job (the case on screen) goes first and replaces any queued job for the same
        photo; jobs queued for earlier on-screen cases wait with the background ones, and a job
        running for another photo is put back at the head of the queue to make way.
        """
        job = AnalysisJob(next(self._ids), Path(path), settings, region, seed, rgb, foreground)
        running = self._running
        if running is not None and (running.path, running.settings, running.region,
                                    running.seed) == (job.path, settings, region, seed):
            return running  # already being computed; its result will arrive
        was_busy = self.busy
        if foreground:  # (a background job only appends: O(1) per case of a big folder)
            self._pending = [job] + [_demoted(j) for j in self._pending if j.path != job.path]
            running = self._running
            if running is not None and self._cancel is not None:
                # another photo: resume it later; this photo with old settings: obsolete
                self._requeue_running = running.path != job.path
                self._cancel.set()
        else:
            self._pending.append(job)
        if not was_busy:
            self.busy_changed.emit(True)
        self._dispatch()
        return job

    def find_cached(self, path: Path, settings: AnalysisSettings, *, region=None, seed: int = 0,
                    content_hash: str | None = None) -> AnalysisJob | None:
        """Look the analysis up in the cache on a pool thread, apart from the analysis queue:
        ``cached`` (with the outcome) or ``cache_missed`` follows. Only the newest look-up is
        answered. None when nothing can be looked up (no model loaded yet, no cache)."""
        if self.model is None or self._cache_dir is None or self._thread is None:
            return None
        job = AnalysisJob(next(self._ids), Path(path), settings, region, seed, None, True)
        self._latest_read[0] = job.job_id
        self._reader.start(_CacheReadJob(job, self.model.model_id, self._cache_dir,
                                         self._latest_read, self._read_signals, content_hash))
        return job

    def drop_queued(self, path: Path) -> None:
        """Forget jobs waiting for ``path`` (its result came from the cache meanwhile)."""
        self._pending = [j for j in self._pending if j.path != Path(path)]
        self._maybe_idle()

    def cancel(self, job: AnalysisJob | None = None) -> None:
        """Cancel one job (queued or running), or every job when ``job`` is None."""
        dropped = [j for j in self._pending if job is None or j.job_id == job.job_id]
        self._pending = [j for j in self._pending if j not in dropped]
        for j in dropped:
            self.cancelled.emit(j)
        running = self._running
        if running is not None and (job is None or job.job_id == running.job_id):
            self._requeue_running = False
            self._cancel.set()
        self._maybe_idle()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop the thread: drop the queue, cancel the running job, quit, wait with a deadline.

        Returns False when the worker was still busy at the deadline (e.g. inside a model load);
        the thread is then left to finish on its own and the caller should exit hard.
        """
        if self._thread is None:
            return True
        self._pending.clear()
        self._latest_read[0] = 0
        self._reader.clear()
        if self._cancel is not None:
            self._cancel.set()
        for signal in (self._worker.model_ready, self._worker.model_unavailable,
                       self._worker.started, self._worker.progress, self._worker.finished,
                       self._worker.failed, self._worker.cancelled):
            signal.disconnect()
        self._read_signals.found.disconnect()
        self._read_signals.missed.disconnect()
        self._thread.quit()  # thread-safe, not queued: the loop ends after the current job
        done = self._thread.wait(timeout_ms) and self._reader.waitForDone(timeout_ms)
        if not done:
            log.warning("analysis thread still busy after %d ms; leaving it", timeout_ms)
            _ORPHANED_THREADS.append((self._thread, self._worker))
        self._thread = None
        return done

    # --- worker signals (arrive queued, in the GUI thread) ---------------------------------
    def _dispatch(self) -> None:
        if self._running is not None or not self._pending or self.model is None:
            return
        job = self._pending.pop(0)
        self._running, self._cancel = job, threading.Event()
        self._run_requested.emit(job, self._cancel)

    def _job_done(self, job_id: int) -> AnalysisJob | None:
        job = self._running
        if job is None or job.job_id != job_id:
            return None
        self._running, self._cancel = None, None
        return job

    def _maybe_idle(self) -> None:
        if not self.busy:
            self.busy_changed.emit(False)

    @Slot(object)
    def _on_model_ready(self, info: ModelInfo) -> None:
        self.model, self.model_loading = info, False
        self.model_ready.emit(info)
        self._dispatch()

    @Slot(str, bool)
    def _on_model_unavailable(self, message: str, missing: bool) -> None:
        self.model, self.model_loading, self.unavailable_message = None, False, message
        self.model_missing = missing
        self.model_unavailable.emit(message, missing)
        self.cancel()

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        if self._running is not None and self._running.job_id == job_id:
            self.job_started.emit(self._running)

    @Slot(int, object)
    def _on_progress(self, job_id: int, progress) -> None:
        if self._running is not None and self._running.job_id == job_id:
            self.progress.emit(self._running, progress)

    @Slot(int, object)
    def _on_finished(self, job_id: int, outcome: AnalysisOutcome) -> None:
        if self._job_done(job_id) is not None:
            self.finished.emit(outcome)
        self._dispatch()
        self._maybe_idle()

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        job = self._job_done(job_id)
        if job is not None:
            self.failed.emit(job, message)
        self._dispatch()
        self._maybe_idle()

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        job = self._job_done(job_id)
        if job is not None:
            if self._requeue_running:
                first_background = sum(1 for j in self._pending if j.foreground)
                self._pending.insert(first_background, _demoted(job))
                self.requeued.emit(job)
            else:
                self.cancelled.emit(job)
        self._requeue_running = False
        self._dispatch()
        self._maybe_idle()
