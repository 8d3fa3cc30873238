"""Re-take the app's screenshots in docs/ (needs a display: a desktop, or Xvfb).

    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 python docs/make_screenshots.py --model models/NAME --cases ../shared/data/samples

Writes docs/screenshot.png (an analysed case), docs/screenshot-variance.png (variance heatmap and
sample outlines), docs/screenshot-editing.png (a brush stroke in progress) and
docs/screenshot-ood.png (a photo that is not dermoscopy: the out-of-distribution warning and the
withheld malignancy figure; scikit-image's "coffee" photo, or a synthetic picture without it).
The app's own folders go to a temporary LESIONVIEWER_HOME and the photos are copied first, so
nothing of the user's (settings, cache, autosaved edits) is touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--cases", default="../shared/data/samples", help="folder of photos")
    p.add_argument("--pick", default="ISIC_0000214.jpg", help="case to show")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent))
    p.add_argument("--size", default="1560x940")
    p.add_argument("--ood-photo", default=None,
                   help="photo for screenshot-ood.png (default: scikit-image's coffee photo)")
    p.add_argument("--force-ood", action="store_true",
                   help="for a model without a fitted OOD score only: mark that photo out of "
                        "distribution by hand (says so on stdout)")
    p.add_argument("--only", nargs="*", default=None,
                   help="write only these file names (all are still taken)")
    args = p.parse_args()

    home = Path(tempfile.mkdtemp(prefix="lesionviewer-shots-"))
    os.environ["LESIONVIEWER_HOME"] = str(home / "home")
    cases = home / "cases"
    shutil.copytree(args.cases, cases, ignore=shutil.ignore_patterns("*.csv", "*.md"))

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName("lesionviewer")
    from lesionviewer.app.views.case_list import REVIEW_QUEUE
    from lesionviewer.app.dirs import app_dirs
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings

    def spin(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def wait(condition, seconds: float = 120) -> None:
        t0 = time.time()
        while not condition() and time.time() - t0 < seconds:
            spin(0.1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dirs = app_dirs().ensure()
    window = MainWindow(load_settings(dirs.config), dirs, model_dir=args.model, device="cpu")
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    window.open_paths([cases])
    wait(lambda: window.session.current is not None)
    target = next((c for c in window.session.cases.cases if c.name == args.pick), None)
    if target is not None:
        window.case_list.select_case(target)
    wait(lambda: window.session.current.analysis is not None and window.view.editor is not None)
    wait(lambda: sum(c.ged is not None for c in window.session.cases.cases) >= 12, 60)
    spin(1.0)

    def shot(name: str) -> None:
        spin(0.4)
        if args.only is not None and name not in args.only:
            return
        if not window.grab().save(str(out / name)):
            raise OSError(f"could not write {out / name}")
        print("wrote", out / name)

    shot("screenshot.png")

    # The variance view on the case the model is least sure about: the top of the review queue.
    window.case_list.set_sort(REVIEW_QUEUE)
    window.case_list.table.selectRow(0)
    wait(lambda: window.session.current.analysis is not None and window.view.editor is not None)
    spin(1.0)
    checks = window.side_panel.overlay_checks
    checks["mask"].setChecked(False)
    checks["variance"].setChecked(True)
    checks["samples"].setChecked(True)
    shot("screenshot-variance.png")
    checks["variance"].setChecked(False)
    checks["samples"].setChecked(False)
    checks["mask"].setChecked(True)

    # The edit shown on the same case: painting in what the model missed of the reference mask
    # (or erasing a stray region when there is no reference).
    cur = window.session.current
    points, tool = _edit_stroke(cur.editor.mask, cur.bundle.reference_mask)
    window.actions.tools[tool].trigger()
    viewport, canvas = window.canvas.viewport(), window.canvas
    QTest.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, canvas.widget_pos(*points[0]).toPoint())
    for x, y in points[1:]:
        QTest.mouseMove(viewport, canvas.widget_pos(x, y).toPoint())
        spin(0.03)
    shot("screenshot-editing.png")  # mid-stroke: the brush circle is on the painted trail
    QTest.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier,
                       canvas.widget_pos(*points[-1]).toPoint())

    # A photo unlike the training dermoscopy: the warning, and no malignancy figure.
    ood_photo = _ood_photo(home / "not-dermoscopy", args.ood_photo)
    if args.force_ood:
        _force_ood(ood_photo)
    window.open_paths([ood_photo])
    wait(lambda: window.session.current is not None
         and window.session.current.case.name == ood_photo.name
         and window.session.current.analysis is not None and window.view.editor is not None)
    spin(1.0)
    window.case_list.select_case(window.session.current.case)  # its row, withheld, in view
    a = window.session.current.analysis
    print(f"{ood_photo.name}: ood={a.ood} ood_score={a.ood_score} "
          f"malignancy_withheld={a.malignancy_withheld!r}"
          + (" (flagged by hand: --force-ood)" if args.force_ood else ""))
    shot("screenshot-ood.png")
    window.close()
    shutil.rmtree(home, ignore_errors=True)
    return 0


def _ood_photo(folder: Path, given: str | None) -> Path:
    """A copy of ``given``, or scikit-image's coffee photo, or (without scikit-image) a synthetic
    non-skin picture: coloured stripes and a blue disc."""
    folder.mkdir(parents=True, exist_ok=True)
    if given:
        return Path(shutil.copy(given, folder))
    import cv2
    import numpy as np

    try:
        from skimage import data

        rgb, name = data.coffee(), "coffee.png"
    except ImportError:
        yy, xx = np.mgrid[0:400, 0:600]
        rgb = np.stack([(xx * 255 // 600), (yy * 255 // 400), 255 - (xx * 255 // 600)], -1)
        rgb[np.hypot(yy - 200, xx - 300) < 120] = (40, 60, 200)
        rgb, name = rgb.astype(np.uint8), "stripes.png"
    path = folder / name
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _force_ood(photo: Path) -> None:
    """Mark the analyses of ``photo`` (and only it) out of distribution, as the engine would."""
    import dataclasses

    import cv2
    import numpy as np

    from lesionviewer.engine.pipeline import Analyzer

    target = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    analyze = Analyzer.analyze

    def flagged(self, image, *args, **kwargs):
        result = analyze(self, image, *args, **kwargs)
        if image.shape != target.shape or not np.array_equal(image, target):
            return result
        return dataclasses.replace(
            result, ood=True, ood_score=float("nan"),
            malignancy_withheld="photo unlike the dermoscopy images the model was trained on")

    Analyzer.analyze = flagged


def _edit_stroke(mask, reference=None):
    """A zig-zag stroke (image points) and the tool for the editing screenshot."""
    import cv2
    import numpy as np

    from lesionviewer.app.correction.tools import Tool

    def zigzag(x, y, bw, bh):
        return [(x + bw * t / 8, y + bh * (0.25 + 0.5 * (t % 2))) for t in range(9)]

    def largest(region):
        count, _labels, stats, _c = cv2.connectedComponentsWithStats(region.view(np.uint8), 8)
        return None if count < 2 else stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), :4]

    if reference is not None:
        missed = largest(reference & ~mask)
        if missed is not None:
            return zigzag(*missed), Tool.BRUSH
        extra = largest(mask & ~reference)
        if extra is not None:
            return zigzag(*extra), Tool.ERASER
    h, w = mask.shape
    box = largest(mask)
    return (zigzag(*box) if box is not None else zigzag(w / 3, h / 3, w / 3, h / 3)), Tool.BRUSH


if __name__ == "__main__":
    sys.exit(main())
