"""The case list and the result panel are dock widgets: at 1024x700 the photo keeps half the
window (it was ~200 px), at 800x600 it stays usable, and the layout comes back next time."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QDockWidget

pytestmark = pytest.mark.gui


def _photo_width(window) -> int:
    return window.canvas.viewport().width()


@pytest.mark.parametrize(("size", "share"), [((1024, 700), 0.5), ((800, 600), 0.45),
                                             ((1920, 1080), 0.5)])
def test_the_photo_gets_the_room_at_small_window_sizes(make_window, case_folder, result_of,
                                                       qtbot, size, share):
    window = make_window(background=False)
    window.open_paths([case_folder])
    result_of(window)
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() == size[0], timeout=2_000)
    qtbot.waitUntil(lambda: _photo_width(window) >= share * size[0] - 2, timeout=2_000)
    docks = window.docks
    assert docks.list_dock.isVisible() and docks.panel_dock.isVisible()
    assert docks.list_dock.width() >= 150 and docks.panel_dock.width() >= 210
    assert _photo_width(window) + docks.list_dock.width() + docks.panel_dock.width() \
        <= size[0]


def test_panels_are_closable_movable_docks_restored_from_the_view_menu_and_remembered(
        make_window, case_folder, result_of, app_home, qtbot):
    window = make_window(background=False)
    docks = window.docks
    for dock in docks.docks:
        assert isinstance(dock, QDockWidget)
        assert dock.features() & QDockWidget.DockWidgetClosable
        assert dock.features() & QDockWidget.DockWidgetMovable
    view_menu = window.actions.view_menu.actions()
    toggle = docks.panel_dock.toggleViewAction()
    assert toggle in view_menu and docks.list_dock.toggleViewAction() in view_menu
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.width() == 1024, timeout=2_000)
    before = _photo_width(window)

    toggle.trigger()  # View > Result panel: closed
    qtbot.waitUntil(lambda: not docks.panel_dock.isVisible(), timeout=2_000)
    qtbot.waitUntil(lambda: _photo_width(window) > before + 150, timeout=2_000)
    window.close()
    saved = json.loads((app_home / "config" / "settings.json").read_text())
    assert saved["window_state"] and saved["window_geometry"]

    again = make_window(background=False)
    qtbot.waitUntil(lambda: again.docks.list_dock.isVisible(), timeout=2_000)
    assert not again.docks.panel_dock.isVisible()  # closed last time: still closed
    again.docks.panel_dock.toggleViewAction().trigger()  # and back from the View menu
    qtbot.waitUntil(lambda: again.docks.panel_dock.isVisible(), timeout=2_000)

    again.docks.list_dock.setFloating(True)
    again.docks.reset_action.trigger()
    assert not again.docks.list_dock.isFloating() and again.docks.list_dock.isVisible()
