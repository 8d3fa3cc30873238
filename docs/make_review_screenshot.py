"""Take docs/screenshot-review.png: the Review panel with two raters' outlines on a real case.

    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 python docs/make_review_screenshot.py --model models/lesionviewer-ddpm-s96 \\
        --data ../shared/data/isic-train --case ISIC_0000013

Two raters of one case: "isic-expert", the data set's own mask (``<id>_mask.png``) saved into
the case store under that name, and the app's user "m.rossi" (an annotator), who corrects the
model's mask in the app with a brush stroke that the app commits to the store. The store is a
fresh SQLite file under a temporary LESIONVIEWER_HOME, made first by "dr.lee" (so dr.lee is
its reviewer and m.rossi sees sign-off disabled, with the reason). Nothing of the user's is
touched.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", default="../shared/data/isic-train", help="folder of ID.jpg, ID_mask.png")
    p.add_argument("--case", default="ISIC_0000013", help="case id (a train-split case)")
    p.add_argument("--out", default=str(HERE / "screenshot-review.png"))
    p.add_argument("--size", default="1560x940")
    args = p.parse_args()

    home = Path(tempfile.mkdtemp(prefix="lesionviewer-review-shot-"))
    os.environ["LESIONVIEWER_HOME"] = str(home / "home")
    os.environ.pop("LESIONVIEWER_DB", None)
    cases = home / "cases"
    cases.mkdir()
    photo = Path(shutil.copy(Path(args.data) / f"{args.case}.jpg", cases))
    # the expert's mask goes into the store as a rater, not next to the photo (it would also
    # be drawn as the reference overlay, on top of the expert's outline)
    expert_mask = Path(args.data) / f"{args.case}_mask.png"

    import cv2

    from lesionviewer.store import CaseStore, ReviewState

    url = f"sqlite:///{home / 'home' / 'data' / 'cases.sqlite'}"
    (home / "home" / "data").mkdir(parents=True)
    with CaseStore.open(url, user="dr.lee") as lead:  # the store's reviewer
        record = lead.add_case(photo)
        lead.set_state(record.id, ReviewState.IN_REVIEW, "two raters, please compare")
    with CaseStore.open(url, user="isic-expert") as expert:
        expert.save_mask(record.id, cv2.imread(str(expert_mask), cv2.IMREAD_GRAYSCALE) > 127,
                         parent_id=None)

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName("lesionviewer")
    from lesionviewer.app.dirs import app_dirs
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings

    def spin(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def wait(condition, seconds: float = 180, what: str = "") -> None:
        t0 = time.time()
        while not condition():
            if time.time() - t0 > seconds:
                raise TimeoutError(f"waited {seconds:.0f} s for {what}")
            spin(0.1)

    dirs = app_dirs().ensure()
    settings = load_settings(dirs.config)
    settings.user_name = "m.rossi"
    window = MainWindow(settings, dirs, model_dir=args.model, device="cpu")
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    review = window.review
    wait(lambda: review.service.identity is not None, what="the case store")
    window.open_paths([cases])
    session = window.session
    wait(lambda: session.current is not None and session.current.analysis is not None
         and window.view.editor is not None, what="the analysis")
    wait(lambda: review.sync.review is not None, what="the review")
    review.show_panel.trigger()
    review.dock.raise_()

    # m.rossi corrects the model's mask: paint in what it missed of the lesion
    cur = session.current
    shots = _load_make_screenshots()
    reference = cv2.imread(str(expert_mask), cv2.IMREAD_GRAYSCALE) > 127
    points, tool = shots._edit_stroke(cur.editor.mask, reference)
    window.actions.tools[tool].trigger()
    viewport, canvas = window.canvas.viewport(), window.canvas
    QTest.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, canvas.widget_pos(*points[0]).toPoint())
    for x, y in points[1:]:
        QTest.mouseMove(viewport, canvas.widget_pos(x, y).toPoint())
        spin(0.03)
    QTest.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier,
                       canvas.widget_pos(*points[-1]).toPoint())
    window.actions.tools[next(iter(window.actions.tools))].trigger()  # back to Pan
    wait(lambda: review.sync.review is not None and len(review.sync.review.versions) == 2,
         what="m.rossi's commit")
    window.side_panel.overlay_checks["contour"].setChecked(False)  # the raters' lines only
    review.compare.setChecked(True)
    window.case_list.select_case(cur.case)
    spin(1.5)
    if not window.grab().save(args.out):
        raise OSError(f"could not write {args.out}")
    agreement = review.sync.review.agreement
    print("wrote", args.out, "| raters:", [v.author for v in review.sync.review.versions],
          "| Dice:", {f"{a}-{b}": round(d, 3) for (a, b), d in agreement.pairwise_dice.items()})
    window.close()
    shutil.rmtree(home, ignore_errors=True)
    return 0


def _load_make_screenshots():
    spec = importlib.util.spec_from_file_location("make_screenshots", HERE / "make_screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
