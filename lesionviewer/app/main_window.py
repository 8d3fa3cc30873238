"""The main window: case list | photo with overlays | result panel, plus menus and status bar.

The window wires parts together and asks the user things; the work happens in
:class:`~lesionviewer.app.services.session.CaseSession` (cases, analysis, autosave) and
:class:`~lesionviewer.app.views.case_view.CaseView` (what the canvas and panel show).
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QUndoGroup
from PySide6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QVBoxLayout,
                               QWidget)

from lesionviewer.app import preferences
from lesionviewer.app.dialogs.about import AboutDialog, about_html, app_icon
from lesionviewer.app.actions import build_actions, keep_window_shortcuts
from lesionviewer.app.views.canvas import ImageCanvas
from lesionviewer.app.services.case import CaseStatus
from lesionviewer.app.views.case_list import CaseListPanel
from lesionviewer.app.views.case_view import CaseView
from lesionviewer.app.dirs import AppDirs
from lesionviewer.app.docks import PanelDocks
from lesionviewer.app.views.legend import OverlayLegend, legend_entries
from lesionviewer.app.views.message_bar import AnalysisProgress, Banner, MessageBar
from lesionviewer.app.views.result_summary import bind_message_bar
from lesionviewer.app.review.review_window import install_review
from lesionviewer.app.services.session import CaseSession
from lesionviewer.app.views.side_panel import SidePanel
from lesionviewer.app.correction.tools import ToolController
from lesionviewer.app.window_tasks import WindowTasks
from lesionviewer.io.images import SUPPORTED_SUFFIXES

log = logging.getLogger(__name__)
PHOTO_FILTER = "Photos (" + " ".join(f"*{s}" for s in SUPPORTED_SUFFIXES) + ");;All files (*)"


class MainWindow(WindowTasks, QMainWindow):
    def __init__(self, settings: preferences.AppSettings, dirs: AppDirs,
                 model_dir: str | None = None, device: str = "auto", db_url: str | None = None):
        super().__init__()
        self.setWindowTitle("lesionviewer")
        self.setWindowIcon(app_icon())
        self.settings, self.dirs = settings, dirs
        self._model_info = None  # the loaded model's ModelInfo, for the About dialog
        self.recent = preferences.RecentPaths(dirs.config)
        self.session = CaseSession(settings, dirs, model_dir, self)
        self.undo_group = QUndoGroup(self)
        self.threads_left_running = False

        self.case_list = CaseListPanel(self.session.cases)
        if settings.case_list_hidden is not None:
            self.case_list.set_hidden_column_names(settings.case_list_hidden)
        self.canvas = ImageCanvas()
        self.tools = ToolController(self.canvas, self)
        self.side_panel = SidePanel()
        self.view = CaseView(self.canvas, self.side_panel, self.tools, settings, self)
        self.legend = OverlayLegend(self.canvas)
        self.message_bar = MessageBar()
        self.banner = Banner()
        self.progress = AnalysisProgress()
        self.hover_label = QLabel()
        self.model_label = QLabel("Loading the model…")
        self._build_layout()
        self.actions = build_actions(self)
        self.docks.add_to_view_menu(self.actions.view_menu)
        keep_window_shortcuts(self.case_list.filter_edit, self.actions)
        self._connect()
        self.setAcceptDrops(True)
        self.resize(QSize(1500, 920))
        self.docks.restore(settings.window_geometry, settings.window_state)
        self.review = install_review(self, db_url)  # the case store, Review menu and panel
        self.session.service.load_model(model_dir, device)
        self._update_actions()
        self.canvas.setFocus(Qt.OtherFocusReason)  # not the filter box: see open_paths
        gc.freeze()

    # A full garbage collection scans every object (Qt, pyqtgraph and torch bring hundreds of
    # thousands); run from a worker thread it holds the GIL and freezes the GUI for 100 ms or
    # more. Freezing the long-lived objects after start-up keeps collections short.

    def _build_layout(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.canvas, 1)
        self.setCentralWidget(central)
        # the case list and the result panel dock at the sides; the photo takes the rest
        self.docks = PanelDocks(self, self.case_list, self.side_panel)
        bar = self.statusBar()
        bar.addWidget(self.hover_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.model_label)

    def _connect(self) -> None:
        s, svc = self.session, self.session.service
        s.message.connect(self.show_message)
        bind_message_bar(self.side_panel.summary, self.message_bar)  # the OOD warning
        s.case_shown.connect(self.view.show_case)
        s.case_shown.connect(lambda cur: self._update_title())
        s.case_shown.connect(lambda cur: self.message_bar.dismiss_offers())
        s.photo_ready.connect(self.view.show_photo)
        s.photo_failed.connect(self.canvas.set_placeholder)
        s.result_ready.connect(self.view.show_result)
        self.view.editor_changed.connect(self._on_editor_changed)
        for signal in (s.case_shown, s.photo_ready, s.result_ready, self.view.editor_changed,
                       self.side_panel.overlay_toggled):
            signal.connect(lambda *_: self.update_legend())
        self.case_list.current_case_changed.connect(s.show_case)
        self.side_panel.threshold_changed.connect(s.set_threshold)
        self.side_panel.threshold_changed.connect(lambda _: self._show_threshold())
        self.side_panel.threshold_reset.connect(lambda: s.set_threshold(None))
        self.side_panel.threshold_reset.connect(self._show_threshold)
        s.case_shown.connect(lambda cur: self._show_threshold())
        s.result_ready.connect(lambda cur: self._show_threshold())
        self.tools.region_drawn.connect(self._on_region_drawn)
        self.tools.needs_mask.connect(lambda: self.show_message(
            "There is no mask to edit yet: open a photo (and wait for its analysis).", "info"))
        self.tools.failed.connect(lambda text: self.show_message(text, "error"))
        self.tools.brush_radius_changed.connect(
            lambda r: self.statusBar().showMessage(f"Brush radius {r:.0f} px", 2000))
        self.canvas.hovered.connect(self._on_hover)
        self.canvas.left.connect(lambda: self.hover_label.setText(""))
        svc.model_ready.connect(self._on_model_ready)
        svc.model_unavailable.connect(self._on_model_unavailable)
        svc.job_started.connect(self._on_job_progress)
        svc.progress.connect(self._on_job_progress)
        svc.busy_changed.connect(self._on_busy_changed)
        self.progress.cancel_requested.connect(self._cancel_shown_work)
        s.cases.dataChanged.connect(lambda *_: self._update_title())
        s.cases.dataChanged.connect(lambda *_: self._select_first_readable())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if hasattr(self, "docks"):
            self.docks.window_resized()  # the photo keeps at least half the width

    # --- opening ---------------------------------------------------------------------------
    def open_paths(self, paths) -> None:
        paths = [Path(p) for p in paths]
        was_empty = not self.session.cases.cases
        cases = self.session.open_paths(paths)
        for p in paths:
            if p.exists():
                self.recent.add(p)
        if cases and (was_empty or self.case_list.current_case() is None or len(cases) == 1):
            self._select_pending = cases  # the first readable one, once the thumbnails say
            self._select_first_readable()
        # Focus left in the filter box (the first widget, or back from the file dialog) would
        # take V, M, F, 1, [ and ] as text: the photo gets it, so they act on the photo.
        self.canvas.setFocus(Qt.OtherFocusReason)

    def _select_first_readable(self) -> None:
        for case in getattr(self, "_select_pending", None) or []:
            if case.status == CaseStatus.ERROR:
                continue
            if case.thumbnail is None:
                return  # not known yet: wait for its thumbnail
            self._select_pending = None
            self.case_list.select_case(case)
            return
        self._select_pending = None

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open photos", self._start_dir(),
                                                PHOTO_FILTER)
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos",
                                                  self._start_dir())
        if folder:
            self.open_paths([folder])

    def _start_dir(self) -> str:
        recent = self.recent.existing()
        if not recent:
            return str(Path.home())
        p = Path(recent[0])
        return str(p if p.is_dir() else p.parent)

    def fill_recent_menu(self) -> None:
        menu = self.actions.recent_menu
        menu.clear()
        for p in self.recent.existing():
            menu.addAction(p, lambda p=p: self.open_paths([p]))
        if menu.isEmpty():
            menu.addAction("(nothing yet)").setEnabled(False)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    # --- analysis --------------------------------------------------------------------------
    def analyse_current(self) -> None:
        svc = self.session.service
        if not self.session.model_available:
            self.show_message("Nothing can be analysed: " + (
                "no model is installed." if svc.model_missing else "the model failed to load.")
                + " See the note at the top of the window.", "error")
        elif self.session.current is None:
            self.show_message("Open a photo first (File > Open, or drop it here).", "info")
        else:
            self.session.analyse_current()

    def analyse_all(self) -> None:
        if not self.session.model_available:
            self.analyse_current()
            return
        n = self.session.analyse_all()
        self.statusBar().showMessage(f"{n} cases queued for analysis", 4000)

    def _cancel_shown_work(self) -> None:
        """The progress strip's Cancel stops what the strip is showing: an export or analyses."""
        if self.progress.owner == "export":
            self.exporter.cancel()
        else:
            self.cancel_analyses()

    def cancel_analyses(self) -> None:
        """Ctrl+., Esc or Cancel: stop the analyses and the folder's background analysis."""
        self.session.cancel_analyses()
        self.statusBar().showMessage("Analysis cancelled. F5 analyses the case on screen, "
                                     "Shift+F5 all cases.", 6000)

    def _on_job_progress(self, job, progress=None) -> None:
        self.progress.owner = "analysis"
        queued = self.session.service.queued
        if progress is None:
            self.progress.show_waiting(f"Analysing {job.path.name}…")
        else:
            self.progress.show_step(job.path.name, progress.step, progress.total,
                                    progress.stage, progress.remaining_s, queued)

    def _on_busy_changed(self, busy: bool) -> None:
        if not busy:
            self.progress.done()
        self._update_actions()

    def _show_threshold(self) -> None:
        """The slider shows the threshold of the case on screen (its own, or the model's)."""
        cur = self.session.current
        if cur is None:
            self.side_panel.set_threshold(self.session.default_threshold())
        else:
            self.side_panel.set_threshold(self.session.threshold_for(cur.case),
                                          custom=cur.case.threshold is not None)

    def _on_model_ready(self, info) -> None:
        self._model_info = info
        gc.freeze()  # the model's objects are long-lived too (see __init__)
        self._show_threshold()
        self.banner.set_text(None)
        self.side_panel.summary.set_ged_cutoffs(info.ged_cutoffs)
        self.model_label.setText(f"Model: {info.name} · device: {info.device}")
        self.model_label.setToolTip(info.model_id)
        self._update_actions()

    def _on_model_unavailable(self, message: str, missing: bool) -> None:
        head = "" if missing else "The model could not be loaded. "
        self.banner.set_text(f"{head}{message} Until then photos still open and masks can be "
                             "drawn by hand, but nothing is analysed.")
        self.model_label.setText("No model installed" if missing else "Model failed to load")
        self.model_label.setToolTip(message)
        self._update_actions()

    def _on_region_drawn(self, region) -> None:
        if self.session.current is None:
            return
        self.session.set_region(region)
        if region is not None:
            x, y, w, h = region
            self.statusBar().showMessage(f"Analysing the region {w} × {h} px at ({x}, {y})", 4000)

    def clear_region(self) -> None:
        self.tools.show_region(None)
        self.session.set_region(None)

    # --- editing ---------------------------------------------------------------------------
    def edit(self, operation: str) -> None:
        editor = self.view.editor
        if editor is None:
            self.tools.needs_mask.emit()
            return
        getattr(editor, operation)()

    def escape(self) -> None:
        if self.tools.drawing:
            self.tools.cancel()
        elif self.session.service.busy:
            self.cancel_analyses()
        elif self.message_bar.isVisible():
            self.message_bar.dismiss()

    def _on_editor_changed(self, editor) -> None:
        stack = None if editor is None else editor.undo_stack
        if stack is not None and stack not in self.undo_group.stacks():
            self.undo_group.addStack(stack)
        for old in list(self.undo_group.stacks()):  # only the case on screen keeps history
            if old is not stack:
                self.undo_group.removeStack(old)
        self.undo_group.setActiveStack(stack)
        self._update_actions()

    def toggle_overlay(self, name: str) -> None:
        check = self.side_panel.overlay_checks[name]
        check.setChecked(not check.isChecked())

    def update_legend(self) -> None:
        """The canvas legend lists the overlays drawn now: switched on and with something
        to draw for the case on screen."""
        cur, visible = self.session.current, self.settings.overlay_visible
        has_mask = self.view.editor is not None
        has_analysis = cur is not None and cur.analysis is not None
        has_reference = cur is not None and cur.bundle is not None \
            and cur.bundle.reference_mask is not None
        drawn = {"contour": has_mask, "mask": has_mask, "reference": has_reference,
                 "samples": has_analysis, "variance": has_analysis}
        self.legend.set_entries(legend_entries(
            self.settings, {name: bool(visible.get(name)) and d for name, d in drawn.items()})
            + (self.review.legend_entries() if hasattr(self, "review") else []))

    def _on_hover(self, x: float, y: float) -> None:
        cur = self.session.current
        size = self.canvas.image_size
        if cur is None or size is None or not (0 <= x < size[1] and 0 <= y < size[0]):
            self.hover_label.setText("")
            return
        text = f"x {int(x)}, y {int(y)}"
        if cur.analysis is not None:
            a = cur.analysis
            text += (f" · consensus {a.consensus_probability[int(y), int(x)]:.2f}"
                     f" · variance {a.variance[int(y), int(x)]:.3f}")
        self.hover_label.setText(text)

    def _update_actions(self) -> None:
        a = getattr(self, "actions", None)
        if a is None:
            return
        editor = self.view.editor
        editable = editor is not None and editor.read_only is None  # not signed off
        for act in (a.fill_holes, a.keep_largest, a.reset):
            act.setEnabled(editable)
        a.cancel.setEnabled(self.session.service.busy)

    def _update_title(self) -> None:
        cur = self.session.current
        title = "lesionviewer"
        if cur is not None:
            title = f"{cur.case.name} [{cur.case.status.value}] – lesionviewer"
        self.setWindowTitle(title)

    # --- messages and help -----------------------------------------------------------------
    def show_message(self, text: str, level: str = "info", actions=None) -> None:
        self.message_bar.show_message(text, level, actions)

    def open_log_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.dirs.log)))

    def about(self) -> None:
        info = self._model_info
        AboutDialog(self, about_html(info and info.name, info and info.model_id,
                                     info and info.device, self.dirs)).exec()
