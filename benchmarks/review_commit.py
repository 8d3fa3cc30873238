"""How long a mask edit in the app takes to reach the case store (issue 9: within 2 s).

    QT_QPA_PLATFORM=offscreen python benchmarks/review_commit.py [--edits 20] [--db URL]

Opens the window without a model (a mask drawn by hand; the commit path does not depend on
the model) on a copy of tests/data/ISIC_0000068.jpg, with its folders under a temporary
LESIONVIEWER_HOME and the case store there too (SQLite) unless --db names another (e.g. a
PostgreSQL server: ``python tests/store/pg_server.py`` prints a URL). Each edit is one
undoable polygon fill; the time is from the edit to the app's ``committed`` signal (the store
transaction has committed). Edits are spaced wider than the commit delay, so each one waits
for its own commit: the worst case a user sees.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--edits", type=int, default=20)
    p.add_argument("--db", default=None, help="store URL (default: SQLite in a temp folder)")
    args = p.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="review-commit-"))
    os.environ["LESIONVIEWER_HOME"] = str(home / "home")
    os.environ.pop("LESIONVIEWER_DB", None)
    photo = Path(shutil.copy(Path(__file__).resolve().parents[1] / "tests" / "data"
                             / "ISIC_0000068.jpg", home))

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from lesionviewer.app.dirs import app_dirs
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    dirs = app_dirs().ensure()
    window = MainWindow(load_settings(dirs.config), dirs, model_dir=str(dirs.data / "none"),
                        device="cpu", db_url=args.db)
    window.show()

    def wait(condition, what: str, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what}")
            app.processEvents(QEventLoop.AllEvents, 10)
            time.sleep(0.002)

    review = window.review
    wait(lambda: review.service.identity is not None, "the store")
    window.open_paths([photo])
    wait(lambda: window.session.current is not None and window.view.editor is not None
         and review.sync.review is not None, "the case")
    committed: list[float] = []
    review.sync.committed.connect(lambda _result: committed.append(time.monotonic()))
    editor = window.view.editor
    h, w = editor.mask.shape
    delays = []
    for i in range(args.edits):
        k = i // 2  # paint a square, then erase it again: every edit changes the mask
        x0, y0 = (k % 5) * w / 6 + 4, (k // 5 % 4) * h / 5 + 4
        square = [(x0, y0), (x0 + w / 8, y0), (x0 + w / 8, y0 + h / 8), (x0, y0 + h / 8)]
        before = len(committed)
        edited_at = time.monotonic()
        editor.fill_polygon(square, value=bool(i % 2 == 0))
        wait(lambda: len(committed) > before, f"the commit of edit {i + 1}")
        delays.append(committed[-1] - edited_at)
        loop = QEventLoop()
        QTimer.singleShot(200, loop.quit)
        loop.exec()
    window.close()
    shutil.rmtree(home, ignore_errors=True)
    delays.sort()
    print(f"store: {review.service.display_url.split('://')[0]}  edits: {len(delays)}")
    print(f"edit -> committed to the store: median {statistics.median(delays):.3f} s, "
          f"95th percentile {delays[int(0.95 * (len(delays) - 1))]:.3f} s, "
          f"max {delays[-1]:.3f} s (bound: 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
