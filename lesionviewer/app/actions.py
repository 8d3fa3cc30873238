"""Menus, toolbar and keyboard shortcuts of the main window, in one table-like place."""

from __future__ import annotations

import types

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from lesionviewer.app.views.case_list import REVIEW_QUEUE
from lesionviewer.app.correction.tools import Tool

TOOL_KEYS = {Tool.PAN: "H", Tool.BRUSH: "B", Tool.ERASER: "E", Tool.POLYGON_ADD: "A",
             Tool.POLYGON_SUBTRACT: "S", Tool.REGION: "R"}
TOOL_TIPS = {
    Tool.PAN: "Pan and zoom (drag, wheel). The middle and right buttons pan/zoom in any tool.",
    Tool.BRUSH: "Paint lesion. [ and ] change the size.",
    Tool.ERASER: "Erase lesion. [ and ] change the size.",
    Tool.POLYGON_ADD: "Click corners, double-click or Enter to add the polygon to the mask.",
    Tool.POLYGON_SUBTRACT: "Click corners, double-click or Enter to cut the polygon out.",
    Tool.REGION: "Drag a box around the lesion: the analysis runs on that region only.",
}


def _action(window, text, slot=None, shortcut=None, tip=None, checkable=False) -> QAction:
    a = QAction(text, window)
    if shortcut:
        a.setShortcuts([QKeySequence(s) for s in
                        (shortcut if isinstance(shortcut, (list, tuple)) else [shortcut])])
    if tip:
        a.setToolTip(tip)
        a.setStatusTip(tip)
    a.setCheckable(checkable)
    if slot is not None:
        a.triggered.connect(lambda checked=False: slot())
    window.addAction(a)  # shortcuts work whichever widget has focus
    return a


class _WindowShortcutsFirst(QObject):
    """Event filter for a text field: the given key sequences stay the window's shortcuts.

    A focused QLineEdit claims the keys it edits with (ShortcutOverride), Ctrl+U among them
    (delete the line, on Linux); left ignored here, the shortcut fires instead.
    """

    def __init__(self, sequences, parent):
        super().__init__(parent)
        self._keys = {QKeySequence(s).toString() for s in sequences}

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.ShortcutOverride and \
                QKeySequence(event.keyCombination()).toString() in self._keys:
            return True  # not accepted: the window's shortcut runs
        return False


def keep_window_shortcuts(text_field, a: types.SimpleNamespace) -> None:
    """Ctrl+U (review queue) and Ctrl+. (cancel) work even while ``text_field`` has focus."""
    sequences = [s for act in (a.review_queue, a.cancel) for s in act.shortcuts()]
    text_field.installEventFilter(_WindowShortcutsFirst(sequences, text_field))


def build_actions(w) -> types.SimpleNamespace:
    a = types.SimpleNamespace()
    a.open_files = _action(w, "&Open photos…", w.open_files_dialog, QKeySequence.Open)
    a.open_folder = _action(w, "Open &folder…", w.open_folder_dialog, "Ctrl+Shift+O")
    a.export = _action(w, "&Export…", w.export_dialog, "Ctrl+E",
                       "Write masks, maps, overlay and JSON for this case or all cases")
    a.settings = _action(w, "&Settings…", w.settings_dialog, QKeySequence.Preferences)
    a.quit = _action(w, "&Quit", w.close, QKeySequence.Quit)
    a.analyse = _action(w, "&Analyse", w.analyse_current, "F5",
                        "Segment the case on screen (in the background; the window stays usable)")
    a.analyse_all = _action(w, "Analyse &all", w.analyse_all, "Shift+F5")
    a.cancel = _action(w, "&Cancel analysis", w.cancel_analyses, "Ctrl+.",
                       "Stop the running and queued analyses (Shift+F5 starts them again)")
    a.undo = w.undo_group.createUndoAction(w, "&Undo")
    a.undo.setShortcuts(QKeySequence.Undo)
    a.redo = w.undo_group.createRedoAction(w, "&Redo")
    redo_keys = {QKeySequence(QKeySequence.Redo).toString(), "Ctrl+Shift+Z", "Ctrl+Y"}
    a.redo.setShortcuts([QKeySequence(k) for k in sorted(redo_keys) if k])
    for x in (a.undo, a.redo):
        w.addAction(x)
    # toolbar buttons keep a short label; the menu items say what they undo
    a.undo_button = QAction("Undo", w, enabled=False)
    a.undo_button.triggered.connect(w.undo_group.undo)
    w.undo_group.canUndoChanged.connect(a.undo_button.setEnabled)
    w.undo_group.undoTextChanged.connect(lambda t: a.undo_button.setToolTip(f"Undo {t} (Ctrl+Z)"))
    a.redo_button = QAction("Redo", w, enabled=False)
    a.redo_button.triggered.connect(w.undo_group.redo)
    w.undo_group.canRedoChanged.connect(a.redo_button.setEnabled)
    w.undo_group.redoTextChanged.connect(lambda t: a.redo_button.setToolTip(f"Redo {t}"))
    a.fill_holes = _action(w, "&Fill holes", lambda: w.edit("fill_holes"), "Ctrl+F")
    a.keep_largest = _action(w, "&Keep largest region", lambda: w.edit("keep_largest_region"),
                             "Ctrl+L")
    a.reset = _action(w, "&Reset to model's mask", lambda: w.edit("reset_to_model"),
                      "Ctrl+R", "Undoable")
    a.clear_region = _action(w, "Clear re&gion", w.clear_region, None,
                             "Analyse the whole photo again")
    a.brush_bigger = _action(w, "Bigger brush", lambda: w.tools.change_brush_size(True), "]")
    a.brush_smaller = _action(w, "Smaller brush", lambda: w.tools.change_brush_size(False), "[")
    a.finish_polygon = _action(w, "Finish polygon", w.tools.finish_polygon,
                               [Qt.Key_Return, Qt.Key_Enter])
    a.escape = _action(w, "Cancel drawing", w.escape, Qt.Key_Escape)
    a.fit = _action(w, "&Fit", w.canvas.fit, "F", "Show the whole photo")
    a.one_to_one = _action(w, "&1:1", w.canvas.one_to_one, "1",
                           "One photo pixel per screen pixel")
    a.zoom_in = _action(w, "Zoom &in", lambda: w.canvas.zoom(1.25), QKeySequence.ZoomIn)
    a.zoom_out = _action(w, "Zoom &out", lambda: w.canvas.zoom(0.8), QKeySequence.ZoomOut)
    a.next_case = _action(w, "&Next case", lambda: w.case_list.step(1),
                          ["PgDown", "Ctrl+Right"])
    a.previous_case = _action(w, "&Previous case", lambda: w.case_list.step(-1),
                              ["PgUp", "Ctrl+Left"])
    a.review_queue = _action(w, "&Review queue (most uncertain first)",
                             lambda: w.case_list.set_sort(REVIEW_QUEUE), "Ctrl+U")
    a.toggle_variance = _action(w, "Show &variance", lambda: w.toggle_overlay("variance"), "V")
    a.toggle_mask = _action(w, "Show &mask", lambda: w.toggle_overlay("mask"), "M")
    a.open_log = _action(w, "Open &log folder", w.open_log_folder)
    a.about = _action(w, "&About lesionviewer", w.about)

    a.tool_group = QActionGroup(w)
    a.tools = {}
    for tool, key in TOOL_KEYS.items():
        act = _action(w, tool.value, lambda t=tool: w.tools.set_tool(t), key,
                      f"{tool.value} ({key}): {TOOL_TIPS[tool]}", checkable=True)
        a.tool_group.addAction(act)
        a.tools[tool] = act
    a.tools[Tool.PAN].setChecked(True)
    w.tools.tool_changed.connect(lambda t: a.tools[t].setChecked(True))

    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addActions([a.open_files, a.open_folder])
    a.recent_menu = QMenu("Open &recent", w)
    a.recent_menu.aboutToShow.connect(w.fill_recent_menu)
    file_menu.addMenu(a.recent_menu)
    file_menu.addSeparator()
    file_menu.addActions([a.export, a.settings])
    file_menu.addSeparator()
    file_menu.addAction(a.quit)
    edit_menu = bar.addMenu("&Edit")
    edit_menu.addActions([a.undo, a.redo])
    edit_menu.addSeparator()
    edit_menu.addActions(list(a.tools.values())[1:5])
    edit_menu.addActions([a.brush_bigger, a.brush_smaller])
    edit_menu.addSeparator()
    edit_menu.addActions([a.fill_holes, a.keep_largest, a.reset])
    analysis_menu = bar.addMenu("&Analysis")
    analysis_menu.addActions([a.analyse, a.analyse_all, a.cancel, a.tools[Tool.REGION],
                              a.clear_region])
    view_menu = a.view_menu = bar.addMenu("&View")
    view_menu.addActions([a.fit, a.one_to_one, a.zoom_in, a.zoom_out])
    view_menu.addSeparator()
    view_menu.addActions([a.toggle_mask, a.toggle_variance])
    view_menu.addSeparator()
    view_menu.addActions([a.next_case, a.previous_case, a.review_queue])
    help_menu = bar.addMenu("&Help")
    help_menu.addActions([a.open_log, a.about])

    tb = QToolBar("Main", w)
    tb.setObjectName("main-toolbar")
    tb.setToolButtonStyle(Qt.ToolButtonTextOnly)
    tb.setMovable(False)
    tb.addActions([a.open_files, a.open_folder])
    tb.addSeparator()
    tb.addActions([a.analyse, a.export])
    tb.addSeparator()
    tb.addActions(list(a.tools.values()))
    tb.addSeparator()
    tb.addActions([a.fill_holes, a.keep_largest, a.reset, a.undo_button, a.redo_button])
    tb.addSeparator()
    tb.addActions([a.fit, a.one_to_one])
    w.addToolBar(tb)
    a.toolbar = tb
    return a
