"""The desktop app (the only package that imports PySide6 / pyqtgraph).

``main(paths, model_dir, device)`` opens the window; the lead's CLI calls it for
``lesionviewer`` and ``lesionviewer gui [PATHS]``.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None, model_dir: str | None = None, device: str = "auto") -> int:
    """Open the window with the photos/folders in ``argv`` (may be empty); returns the exit code.

    ``model_dir`` None means the shipped model (find_default_model); when none is installed the
    window still opens and says so. ``device`` "auto" uses the device saved in the settings.
    """
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
    window = MainWindow(settings, dirs, model_dir=model_dir, device=device)
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
