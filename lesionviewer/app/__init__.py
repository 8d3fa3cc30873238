"""The desktop app (the only package that imports PySide6 / pyqtgraph).

``main(paths, model_dir, device)`` opens the window; the lead's CLI calls it for
``lesionviewer`` and ``lesionviewer gui [PATHS]``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

__all__ = ["main", "start_engine_import", "wait_for_engine_import"]


def main(argv: list[str] | None = None, model_dir: str | None = None, device: str = "auto",
         db_url: str | None = None) -> int:
    """Open the window with the photos/folders in ``argv`` (may be empty); returns the exit code.

    ``model_dir`` None means the shipped model (find_default_model); when none is installed the
    window still opens and says so. ``device`` "auto" uses the device saved in the settings.
    ``db_url``: the case store (None: $LESIONVIEWER_DB, the settings, or the SQLite file).
    """
    start_engine_import()  # torch takes 1.4-2.3 s to import: overlap it with the window's
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from lesionviewer import __version__
    from lesionviewer.app.dirs import app_dirs
    from lesionviewer.app.logging_setup import install_excepthook, setup_logging
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings
    from lesionviewer.app.qt_check import exit_if_broken_pyside

    exit_if_broken_pyside()  # PySide6 6.12.0 aborts Python 3.11 after some thousand Qt calls
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "lesionviewer"])
    app.setApplicationName("lesionviewer")
    app.setApplicationVersion(__version__)
    dirs = app_dirs().ensure()
    log_path = setup_logging(dirs.log)
    log = logging.getLogger("lesionviewer.app")
    log.info("lesionviewer %s starting; log %s", __version__, log_path)
    settings = load_settings(dirs.config)
    if device == "auto":
        device = settings.device
    window = MainWindow(settings, dirs, model_dir=model_dir, device=device, db_url=db_url)
    install_excepthook(lambda text: window.show_message(text, "error"))
    _close_on_ctrl_c(window)
    window.show()
    if argv:
        window.open_paths(argv)
    code = app.exec()
    log.info("lesionviewer exiting with %d", code)
    if window.threads_left_running:
        # A worker is stuck inside one long step (e.g. a model load); everything the user made
        # is saved, so leave without waiting for it (Qt would abort on destroying the thread).
        logging.shutdown()
        os._exit(code)
    return code


_engine_import: threading.Thread | None = None


def start_engine_import() -> None:
    """Import torch and the analysis engine on a background thread, now.

    The analysis thread imports them anyway when it loads the model, but only once the window
    exists; started first thing in :func:`main`, the import runs while Qt, the window and the
    case list come up, so the first case is analysed seconds sooner. Errors are left for the
    model load to report. Call :func:`wait_for_engine_import` before importing torch elsewhere.
    """
    global _engine_import
    if _engine_import is not None or "torch" in sys.modules:
        return

    def run() -> None:
        try:
            import lesionviewer.engine.pipeline  # noqa: F401  (torch, the UNet, DenseCRF)
        except Exception:  # reported by the model load, where the user sees it
            pass

    _engine_import = threading.Thread(target=run, name="engine-import", daemon=True)
    _engine_import.start()


def wait_for_engine_import(timeout: float | None = None) -> None:
    """Let a background import started by :func:`start_engine_import` finish (two threads
    importing torch at once can trip Python's import-deadlock check)."""
    thread = _engine_import
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)


def _close_on_ctrl_c(window) -> None:
    """Ctrl+C in the terminal closes the window the normal way (edits saved, threads stopped).

    Python runs signal handlers only between bytecodes, so a timer gives it a turn now and then
    while Qt's event loop runs in C++.
    """
    import signal

    from PySide6.QtCore import QTimer

    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)
