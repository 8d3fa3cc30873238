"""Width of the photo (canvas viewport) in the main window at common small window sizes.

    QT_QPA_PLATFORM=offscreen python benchmarks/photo_room.py

Opens the window without a model (the layout does not depend on one) on the photos in
tests/data, with settings in a temporary folder, resizes it and prints the photo's width.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

SIZES = ((1500, 920), (1280, 800), (1024, 700), (800, 600))


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["LESIONVIEWER_HOME"] = tempfile.mkdtemp(prefix="photo-room-")
    from PySide6.QtCore import QCoreApplication, QEventLoop
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from lesionviewer.app.dirs import app_dirs
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    dirs = app_dirs().ensure()
    window = MainWindow(load_settings(dirs.config), dirs, model_dir=str(dirs.data / "none"),
                        device="cpu")
    window.show()
    window.open_paths([Path(__file__).resolve().parents[1] / "tests" / "data"])
    for width, height in SIZES:
        window.resize(width, height)
        for _ in range(20):
            QCoreApplication.processEvents(QEventLoop.AllEvents, 20)
            QTest.qWait(10)
        photo = window.canvas.viewport().width()
        print(f"window {width}x{height}: photo {photo} px wide ({photo / width:.0%})")
    window.close()
    app.processEvents()
    if window.threads_left_running:  # a model load still under way: leave as the app does
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
