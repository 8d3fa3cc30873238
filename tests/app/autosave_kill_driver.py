"""Run by test_autosave_kill.py: the real app (``lesionviewer.app.main``) with a user who never
pauses: one brush stroke every INTERVAL_MS on the photo, each a dot at its own spot.

Prints "ready" once the mask can be edited, then "stroke K" after each stroke (flushed), and
runs until it is killed. Usage: autosave_kill_driver.py PHOTO MODEL_DIR INTERVAL_MS
(LESIONVIEWER_HOME and QT_QPA_PLATFORM=offscreen come from the environment).
"""

from __future__ import annotations

import sys

RADIUS = 3.0


def spot(k: int) -> tuple[int, int]:
    """(x, y) of stroke k's dot: a grid 12 px apart, clear of the photo's edges."""
    return 10 + 12 * (k % 18), 10 + 12 * (k // 18)


def main() -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from lesionviewer.app import main as app_main
    from lesionviewer.app.main_window import MainWindow

    photo, model_dir, interval_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = QApplication.instance() or QApplication(["lesionviewer"])
    strokes = QTimer(app)
    count = [0]

    def editor():
        windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
        cur = windows[0].session.current if windows else None
        return None if cur is None else cur.editor

    def stroke():
        ed = editor()
        k = count[0]
        x, y = spot(k)
        s = ed.begin_stroke(RADIUS, True)
        s.add_point(x, y)
        ed.end_stroke(s)
        count[0] += 1
        print(f"stroke {k}", flush=True)

    def wait_for_editor():
        if editor() is None:
            QTimer.singleShot(50, wait_for_editor)
            return
        print("ready", flush=True)
        strokes.timeout.connect(stroke)
        strokes.start(interval_ms)

    QTimer.singleShot(0, wait_for_editor)
    return app_main([photo], model_dir=model_dir, device="cpu")


if __name__ == "__main__":
    sys.exit(main())
