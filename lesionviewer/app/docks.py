"""The case list and the result panel as dock widgets: movable, closable, restorable from the
View menu, their layout saved with the settings, and never squeezing the photo below half
the window (at 1024 px a fixed three-way split left the photo ~200 px wide)."""

from __future__ import annotations

import math

from PySide6.QtCore import QByteArray, QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QMenu, QScrollArea, QWidget

LIST_MIN_WIDTH = 150  # thumbnail and a short name still fit
PANEL_MIN_WIDTH = 210  # the panel scrolls sideways below its natural width
PHOTO_SHARE = 0.5  # the photo keeps at least this share of the window's width
DEFAULT_SHARES = (0.26, 0.24)  # case list (room for the names beside status, GED, malignancy), result panel


def _b64(data: QByteArray) -> str:
    return bytes(data.toBase64()).decode("ascii")


class PanelDocks(QObject):
    def __init__(self, window: QMainWindow, case_list: QWidget, side_panel: QWidget):
        super().__init__(window)
        self.window = window
        self.list_dock = self._dock("Cases", "cases-dock", case_list, LIST_MIN_WIDTH)
        scroll = QScrollArea()
        scroll.setObjectName("result-scroll")
        scroll.setWidget(side_panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        self.panel_dock = self._dock("Result", "result-dock", scroll, PANEL_MIN_WIDTH)
        window.addDockWidget(Qt.LeftDockWidgetArea, self.list_dock)
        window.addDockWidget(Qt.RightDockWidgetArea, self.panel_dock)
        window.setCorner(Qt.BottomLeftCorner, Qt.LeftDockWidgetArea)
        window.setCorner(Qt.BottomRightCorner, Qt.RightDockWidgetArea)
        self._restored = False
        # one pass after each burst of window resizes, once the layout has settled
        self._room_timer = QTimer(self, singleShot=True, interval=0)
        self._room_timer.timeout.connect(self.keep_photo_room)

    def _dock(self, title: str, name: str, widget: QWidget, min_width: int) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)  # saveState/restoreState find docks by name
        dock.setWidget(widget)
        dock.setAllowedAreas(Qt.LeftDockWidgetArea | Qt.RightDockWidgetArea)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetClosable
                         | QDockWidget.DockWidgetFloatable)
        # an explicit minimum overrides the content's size hint (the order box alone asks
        # 230 px), so the panel can narrow; what does not fit is clipped or scrolls
        widget.setMinimumWidth(min_width)
        dock.setMinimumWidth(min_width)
        return dock

    @property
    def docks(self) -> tuple[QDockWidget, QDockWidget]:
        return self.list_dock, self.panel_dock

    # --- View menu -------------------------------------------------------------------------
    def add_to_view_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        for dock, key in ((self.list_dock, "Ctrl+Shift+L"), (self.panel_dock, "Ctrl+Shift+R")):
            toggle = dock.toggleViewAction()
            toggle.setText(f"{dock.windowTitle()} panel")
            toggle.setShortcut(key)
            self.window.addAction(toggle)  # the shortcut works with the panel hidden too
            menu.addAction(toggle)
        self.reset_action = QAction("Reset panel layout", self.window)
        self.reset_action.triggered.connect(self.reset)
        menu.addAction(self.reset_action)

    # --- layout ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Both panels back at their sides, shown, docked, at their default widths."""
        for dock, area in ((self.list_dock, Qt.LeftDockWidgetArea),
                           (self.panel_dock, Qt.RightDockWidgetArea)):
            dock.setFloating(False)
            self.window.addDockWidget(area, dock)
            dock.show()
        width = self.window.width()
        self.window.resizeDocks(list(self.docks),
                                [int(width * share) for share in DEFAULT_SHARES], Qt.Horizontal)

    def restore(self, geometry: str, state: str) -> None:
        """Take back a layout saved by :meth:`saved` (empty strings: the default layout)."""
        if geometry:
            self.window.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii")))
        if not (state and self.window.restoreState(
                QByteArray.fromBase64(state.encode("ascii")))):
            self.reset()

    def saved(self) -> tuple[str, str]:
        """(geometry, state) as base64 text for the settings file."""
        return _b64(self.window.saveGeometry()), _b64(self.window.saveState())

    def window_resized(self) -> None:
        self._room_timer.start()

    def keep_photo_room(self) -> None:
        """Narrow the docked panels (not below their minimum) until the photo has at least
        PHOTO_SHARE of the window's width; panels the user made narrower stay as they are."""
        window = self.window
        docked = [d for d in self.docks if d.isVisible() and not d.isFloating()]
        if not docked:
            return
        widths = [d.width() for d in docked]
        central = window.centralWidget()
        deficit = math.ceil(window.width() * PHOTO_SHARE) - central.contentsRect().width() \
            + central.layout().contentsMargins().left() + central.layout().contentsMargins().right()
        if deficit <= 0:
            return
        floors = [d.minimumWidth() for d in docked]
        above = [w - f for w, f in zip(widths, floors)]
        cut = min(deficit, sum(above))
        total_above = sum(above) or 1
        target = [w - math.ceil(cut * a / total_above) for w, a in zip(widths, above)]
        window.resizeDocks(docked, [max(f, t) for f, t in zip(floors, target)], Qt.Horizontal)
