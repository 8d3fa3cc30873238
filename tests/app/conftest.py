"""Fixtures for the GUI tests: the app's folders under tmp_path, a copy of the sample cases
(autosave writes next to the photos), and a window with the tiny random model loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
CASES = ("ISIC_0000068", "ISIC_0024311")


@pytest.fixture(autouse=True)
def app_home(tmp_path, monkeypatch) -> Path:
    """Settings, cache, autosave fallback and logs all go here, never to the real user folders
    (autouse: no GUI test can reach them by forgetting this fixture)."""
    home = tmp_path / "home"
    monkeypatch.setenv("LESIONVIEWER_HOME", str(home))
    return home


@pytest.fixture
def case_folder(tmp_path) -> Path:
    """A writable folder holding the two real test cases (photo + reference mask)."""
    folder = tmp_path / "cases"
    folder.mkdir()
    for case in CASES:
        for name in (f"{case}.jpg", f"{case}_mask.png"):
            shutil.copy(TEST_DATA / name, folder / name)
    return folder

@pytest.fixture
def store_url(app_home, monkeypatch):
    """The app's default store (SQLite in $LESIONVIEWER_HOME/data), made first by "lead" so
    that lead is its reviewer and later users are annotators."""
    from lesionviewer.store import CaseStore, Role

    monkeypatch.delenv("LESIONVIEWER_DB", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    url = f"sqlite:///{app_home / 'data' / 'cases.sqlite'}"
    with CaseStore.open(url, user="lead") as store:
        assert store.role is Role.REVIEWER
    return url


@pytest.fixture
def make_window(qtbot, app_home, tiny_model_dir):
    """Factory: a shown MainWindow with the tiny model loaded (closed again after the test)."""
    from lesionviewer.app.dirs import app_dirs
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings

    windows = []

    def make(model_dir=tiny_model_dir, background=True, wait_model=True, **settings):
        dirs = app_dirs().ensure()
        prefs = load_settings(dirs.config)
        prefs.analyse_folder_in_background = background
        for key, value in settings.items():
            setattr(prefs, key, value)
        window = MainWindow(prefs, dirs, model_dir=None if model_dir is None else str(model_dir),
                            device="cpu")
        window.ask_quit_anyway = lambda errors: True  # tests never block on a dialog
        qtbot.addWidget(window)
        if wait_model:
            with qtbot.waitSignal(window.session.service.model_ready, timeout=30_000):
                window.show()
        else:
            window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.isVisible():
            window.close()


@pytest.fixture
def reviewer_on_case(make_window, case_folder, result_of, qtbot, store_url):
    """A window of "lead" (the store's reviewer) with ISIC_0000068 analysed, in the store and
    ready to sign off: (window, its OnScreen case)."""
    window = make_window(background=False, user_name="lead")
    qtbot.waitUntil(lambda: window.review.service.identity is not None, timeout=20_000)
    window.open_paths([case_folder / "ISIC_0000068.jpg"])
    cur = result_of(window)
    qtbot.waitUntil(lambda: window.review.panel.sign_off.isEnabled(), timeout=20_000)
    return window, cur


def wait_for_result(qtbot, window, timeout=30_000):
    """Block (running the event loop) until the case on screen has an analysis and a mask."""
    session = window.session

    def ready():
        cur = session.current
        assert cur is not None and cur.analysis is not None and cur.editor is not None
        assert window.view.editor is cur.editor

    qtbot.waitUntil(ready, timeout=timeout)
    return session.current


@pytest.fixture
def result_of(qtbot):
    return lambda window, timeout=30_000: wait_for_result(qtbot, window, timeout)


def drag(qtbot, window, points, button=None):
    """Press at the first image point, move through the rest, release at the last.

    Points are (x, y) in full-resolution image pixels; events go to the canvas viewport as a
    real mouse's would.
    """
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    button = button or Qt.LeftButton
    viewport = window.canvas.viewport()
    widget_points = [window.canvas.widget_pos(x, y).toPoint() for x, y in points]
    QTest.mousePress(viewport, button, Qt.NoModifier, widget_points[0])
    for p in widget_points[1:]:
        QTest.mouseMove(viewport, p)
        qtbot.wait(5)
    QTest.mouseRelease(viewport, button, Qt.NoModifier, widget_points[-1])


@pytest.fixture
def mouse_drag(qtbot):
    return lambda window, points, button=None: drag(qtbot, window, points, button)
