"""The Qt half of ``lesionviewer --selftest``: can this computer show the app's window?

Builds the real :class:`MainWindow` (so a missing Qt plugin, library or module in an installed
bundle shows up here, not in front of a clinician), waits until the window is on screen,
grabs it once and closes it. Its settings, cache and log go to a throw-away folder.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

SHOW_TIMEOUT_S = 20.0
MODEL_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class WindowResult:
    platform: str  # Qt platform plugin: xcb, wayland, offscreen, windows, cocoa
    qt_version: str
    seconds: float  # from importing Qt to the window being on screen
    since_process_start: float | None  # from the process's start (bootloader included)
    width: int
    height: int


def open_window(home: Path, model_dir: str | None) -> WindowResult:
    """Show the main window once with its folders under ``home``; raise RuntimeError with a
    readable reason when Qt cannot."""
    started = time.perf_counter()
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    import PySide6
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from lesionviewer.app.dirs import AppDirs
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings
    from lesionviewer.app.qt_check import broken_pyside_message
    from lesionviewer.selftest import process_age

    broken = broken_pyside_message()
    if broken:
        raise RuntimeError(broken)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "lesionviewer"])
    dirs = AppDirs(home / "config", home / "cache", home / "data", home / "log").ensure()
    window = MainWindow(load_settings(dirs.config), dirs, model_dir=model_dir, device="cpu")
    window.ask_quit_anyway = lambda errors: True  # nothing of the user's is open here
    window.show()
    deadline = started + SHOW_TIMEOUT_S
    while not (window.windowHandle() is not None and window.windowHandle().isExposed()):
        app.processEvents(QEventLoop.AllEvents, 50)
        if time.perf_counter() > deadline:
            window.close()
            raise RuntimeError(f"Qt could not show the window within {SHOW_TIMEOUT_S:.0f} s "
                               f"(platform '{app.platformName()}'): check the display.")
        time.sleep(0.005)
    shown = time.perf_counter()
    since_start = process_age()
    picture = window.grab()
    if picture.isNull() or picture.width() < 100:
        window.close()
        raise RuntimeError(f"Qt showed the window but could not draw it (platform "
                           f"'{app.platformName()}'): the graphics libraries are incomplete.")
    result = WindowResult(app.platformName(), PySide6.__version__, shown - started, since_start,
                          picture.width(), picture.height())
    # Let the window's own model load finish (or fail: the model check says why) before
    # closing, so no analysis thread is left importing torch behind the next check.
    settled = []
    service = window.session.service
    service.model_ready.connect(lambda *_: settled.append(True))
    service.model_unavailable.connect(lambda *_: settled.append(False))
    deadline = time.perf_counter() + MODEL_TIMEOUT_S
    while not settled and time.perf_counter() < deadline and not window.model_label.text().startswith(
            ("Model", "No model")):
        app.processEvents(QEventLoop.AllEvents, 50)
        time.sleep(0.01)
    window.close()
    app.processEvents()
    return result
