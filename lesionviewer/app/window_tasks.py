"""The main window's dialogs and their follow-up: export, settings, quitting (a mixin)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QMessageBox

from lesionviewer.app import preferences
from lesionviewer.app.services.case import CaseStatus
from lesionviewer.app.dialogs.export_dialog import ExportDialog
from lesionviewer.app.services.exporter import ExportItem, ExportReport, ExportRequest, Exporter
from lesionviewer.app.dialogs.settings_dialog import SettingsDialog
from lesionviewer.app.services.worker import AnalysisJob, job_cache_key

log = logging.getLogger(__name__)


class WindowTasks:
    """Mixed into MainWindow; uses its session, settings, view and message bar."""

    # --- export ----------------------------------------------------------------------------
    @property
    def exporter(self) -> Exporter:
        if getattr(self, "_exporter", None) is None:
            self._exporter = Exporter(self)
            self._exporter.progress.connect(self._on_export_progress)
            self._exporter.finished.connect(self._on_export_finished)
        return self._exporter

    def _on_export_progress(self, done: int, total: int, name: str) -> None:
        self.progress.owner = "export"
        self.progress.show_step(name, done, total, f"exporting {done + 1} of {total}", None, 0)

    def export_dialog(self) -> None:
        if self.exporter.busy:
            self.show_message("An export is already running.", "info")
            return
        cur = self.session.current
        first = self.session.cases.cases[0].path.parent if self.session.cases.cases else Path.home()
        default = Path(self.settings.export_dir) if self.settings.export_dir else \
            first / "lesionviewer-export"
        dialog = ExportDialog(self, default, self.settings.isic_naming,
                              None if cur is None else cur.case.name,
                              len(self.session.cases.cases))
        if dialog.exec() == QDialog.Accepted:
            self.start_export(*dialog.choices())

    def start_export(self, folder: Path, all_cases: bool, isic_naming: bool, coco: bool) -> bool:
        """Start exporting in the background; False when there is nothing to export."""
        self.settings.isic_naming, self.settings.export_dir = isic_naming, str(folder)
        items = self._export_items(all_cases)
        if not items:
            self.show_message("Nothing to export: open a photo first.", "info")
            return False
        self.session.autosave_current()
        self.exporter.start(ExportRequest(
            folder, items, isic_naming, coco, self.session.default_threshold(),
            self._cache_lookup(),
            self.dirs.data / "sidecars"))
        return True

    def _export_items(self, all_cases: bool) -> list[ExportItem]:
        cur = self.session.current
        items = []
        if cur is not None and cur.bundle is not None:
            editor = cur.editor
            items.append(ExportItem(
                cur.case.path, cur.bundle.image.rgb,
                None if editor is None else editor.mask.copy(), cur.analysis,
                None if editor is None else editor.undo_stack.summary.to_dict(),
                cur.bundle.content_hash, update_sidecar=False))
        if all_cases:
            on_screen = None if cur is None else cur.case.path
            items += [ExportItem(c.path) for c in self.session.cases.cases
                      if c.path != on_screen and c.status != CaseStatus.ERROR]
        return items

    def _cache_lookup(self):
        """A thread-safe function (path, content hash) -> cached Analysis or None."""
        model = self.session.service.model
        if model is None:
            return None
        from lesionviewer.io.cache import AnalysisCache

        cache = AnalysisCache(self.dirs.cache / "analyses")
        settings = self.settings.analysis_settings()
        regions = {c.path: c.region for c in self.session.cases.cases}

        def lookup(path: Path, digest: str):
            job = AnalysisJob(0, path, settings, regions.get(path))
            return cache.get(job_cache_key(digest, model.model_id, job))

        return lookup

    def _on_export_finished(self, report: ExportReport) -> None:
        self.progress.done()
        cur = self.session.current
        for path in report.exported:
            case = self.session.cases.find(path)
            if case is None:
                continue
            case.exported = True
            case.refresh_status()
            self.session.cases.case_changed(case)
            if cur is not None and cur.case is case:
                case.version += 1  # the sidecar records "exported" with the next autosave
                self.session.autosave_current()
        parts = [f"Exported {len(report.exported)} case(s) to {report.out_dir}."]
        if report.coco_path:
            parts.append(f"COCO file: {report.coco_path.name}.")
        if report.skipped:
            parts.append(f"Skipped {len(report.skipped)}: " + " ".join(report.skipped[:3]))
        if report.failed:
            parts.append(f"Failed {len(report.failed)}: " + " ".join(report.failed[:3]))
        if report.cancelled:
            parts.append("Cancelled before the end.")
        level = "error" if report.failed else "info"
        self.show_message(" ".join(parts), level, [("Open folder", lambda: QDesktopServices.openUrl(
            QUrl.fromLocalFile(str(report.out_dir))))])
        self.last_export_report = report

    # --- settings --------------------------------------------------------------------------
    def settings_dialog(self) -> None:
        model = self.session.service.model
        dialog = SettingsDialog(self.settings, None if model is None else model.default_settings,
                                self)
        if dialog.exec() == QDialog.Accepted:
            self.apply_settings(dialog.result_settings())
            if dialog.store_box.keyring_failed:
                self.show_message("The database password could not be kept: this system has "
                                  "no keyring. Put it in ~/.pgpass (or $PGPASSFILE) instead; it "
                                  "is never written into the settings.", "warning")

    def apply_settings(self, new: preferences.AppSettings) -> None:
        """Take over changed settings in place (session and view share the object)."""
        old_analysis = self.settings.analysis_settings()
        device_changed = new.device != self.settings.device
        store_changed = (new.db_url, new.user_name) != (self.settings.db_url,
                                                        self.settings.user_name)
        for f in dataclasses.fields(new):
            setattr(self.settings, f.name, getattr(new, f.name))
        self._save_settings()
        self.view.apply_colours()
        self.update_legend()
        if store_changed:
            self.review.reopen()  # another case store or user name: from now on
        if device_changed:
            self.session.service.load_model(self.session.model_dir, new.device)
        if device_changed or self.settings.analysis_settings() != old_analysis:
            self.session.reanalyse_all()

    def _save_settings(self) -> None:
        try:
            preferences.save_settings(self.dirs.config, self.settings)
        except OSError as exc:
            self.show_message(f"Settings could not be saved: {exc}", "warning")

    # --- quitting --------------------------------------------------------------------------
    def ask_quit_anyway(self, errors: list[str]) -> bool:
        answer = QMessageBox.warning(
            self, "Unsaved edits",
            "These edits could not be saved:\n\n" + "\n".join(errors)
            + "\n\nQuit anyway and lose them?",
            QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Discard

    def closeEvent(self, event) -> None:
        errors = self.session.finish()
        if errors and not self.ask_quit_anyway(errors):
            event.ignore()
            return
        self.settings.window_geometry, self.settings.window_state = self.docks.saved()
        if self.case_list.columns_chosen:
            self.settings.case_list_hidden = self.case_list.hidden_column_names()
        self._save_settings()
        if getattr(self, "_exporter", None) is not None:
            self._exporter.shutdown(5000)
        self.session.autosaver.wait(5000)
        self.review.shutdown(5000)  # the last edits to the case store, then close it
        self.threads_left_running = not self.session.shutdown(5000)
        event.accept()
