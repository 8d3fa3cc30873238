"""Puts the case on screen into the canvas, the overlays and the side panel, and keeps them
in step with the mask editor (the editor changes, the overlays redraw the changed box)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor

from lesionviewer.app.views.canvas import ImageCanvas
from lesionviewer.app.views.geometry import dice, mask_contours, variance_levels
from lesionviewer.app.views.overlays import (ContourItem, SampleContoursItem, colormap_table,
                                       contours_path)
from lesionviewer.app.views.scaled_items import ScaledIndexedItem, ScaledMaskFill
from lesionviewer.app.preferences import AppSettings
from lesionviewer.app.views.side_panel import SidePanel
from lesionviewer.app.correction.tools import ToolController

Z = {"variance": 10, "mask": 20, "samples": 30, "reference": 35, "contour": 40}


class CaseView(QObject):
    """Binds :class:`~lesionviewer.app.services.session.OnScreen` to the widgets that show it."""

    editor_changed = Signal(object)  # MaskEditor or None
    outline_ready = Signal()  # outline, area and Dice now match the mask

    def __init__(self, canvas: ImageCanvas, panel: SidePanel, tools: ToolController,
                 settings: AppSettings, parent=None):
        super().__init__(parent)
        self.canvas, self.panel, self.tools, self.settings = canvas, panel, tools, settings
        self.current = None
        self.editor = None
        self.items = {
            "variance": ScaledIndexedItem(),  # both drawn from display-sized copies
            "mask": ScaledMaskFill(),
            "samples": SampleContoursItem(),
            "reference": ContourItem(width=2.0),
            "contour": ContourItem(width=2.0),
        }
        for name, item in self.items.items():
            canvas.add_overlay(item, Z[name])
        self.apply_colours()
        self._outline_timer = QTimer(self, singleShot=True, interval=120)
        self._outline_timer.timeout.connect(self._refresh_outline)
        self._outline_version = 0
        self._outline_signals = _OutlineSignals(self)
        self._outline_signals.done.connect(self._on_outline)
        self._outline_pool = QThreadPool(self)
        self._outline_pool.setMaxThreadCount(1)
        panel.overlay_toggled.connect(self.set_visible)
        panel.overlay_opacity_changed.connect(self.set_opacity)
        panel.set_overlay_state(settings.overlay_visible, settings.overlay_opacity)
        for name in self.items:
            self.set_visible(name, settings.overlay_visible.get(name, False))
            self.set_opacity(name, settings.overlay_opacity.get(name, 1.0))

    # --- appearance ------------------------------------------------------------------------
    def apply_colours(self) -> None:
        s = self.settings
        self.items["mask"].set_colour(QColor(s.mask_colour))
        self.items["contour"].set_pen(s.contour_colour, 2.0)
        self.items["samples"].set_colour(s.sample_colour)
        self.items["reference"].set_pen(s.reference_colour, 2.0, style=Qt.DashLine)
        self.items["variance"].set_colours(colormap_table(s.variance_colormap))
        self.tools.set_region_colour(s.region_colour)
        self._update_colorbar()

    def set_visible(self, name: str, visible: bool) -> None:
        self.settings.overlay_visible[name] = bool(visible)
        self.items[name].setVisible(bool(visible))
        if name == "variance":
            self._update_colorbar()

    def set_opacity(self, name: str, opacity: float) -> None:
        self.settings.overlay_opacity[name] = float(opacity)
        self.items[name].setOpacity(float(opacity))

    def _update_colorbar(self) -> None:
        has_variance = self.items["variance"].has_image()
        self.canvas.show_colorbar(has_variance and self.settings.overlay_visible.get("variance"),
                                  self.settings.variance_colormap)

    # --- session signals -------------------------------------------------------------------
    def show_case(self, cur) -> None:
        """A new case is on screen: clear everything until its photo arrives."""
        self.current = cur
        self.tools.cancel()  # a polygon half drawn on the previous case must not carry over
        self._set_editor(None)
        self.items["variance"].set_indices(None)
        self.items["samples"].set_samples(None)
        self.items["reference"].set_contours(None)
        self.items["contour"].set_contours(None)
        self.items["mask"].set_mask(None)
        self.tools.show_region(None)
        self.panel.show_analysis(None)
        self.panel.show_mask_stats(None, None)
        self.panel.set_reference_available(False)
        self.canvas.set_photo(None)
        self.canvas.set_placeholder(None if cur is not None else
                                    "Choose a case in the list, or open more photos.")
        if cur is not None:
            self.canvas.set_placeholder(f"Opening {cur.case.name}…")
        self._update_colorbar()

    def show_photo(self, cur) -> None:
        if cur is not self.current:
            return
        self.canvas.set_photo(cur.bundle.image.rgb)
        self.items["reference"].set_contours(cur.bundle.reference_contours)
        self.panel.set_reference_available(cur.bundle.reference_mask is not None)
        self.tools.show_region(cur.case.region)

    def show_result(self, cur) -> None:
        if cur is not self.current:
            return
        outcome = cur.outcome
        if outcome is not None:
            variance = outcome.analysis.variance  # full resolution, for zoomed-in views
            self.items["variance"].set_indices(
                outcome.display.variance_u8, variance.shape,
                lambda y0, y1, x0, x1: variance_levels(variance[y0:y1, x0:x1]))
            self.items["samples"].set_samples(outcome.display.sample_contours)
            self.panel.show_analysis(outcome.analysis, outcome.from_cache)
        self.tools.show_region(cur.case.region)
        self._update_colorbar()
        self._set_editor(cur.editor)

    # --- the editable mask -----------------------------------------------------------------
    def _set_editor(self, editor) -> None:
        if self.editor is editor:
            self._redraw_mask()
            return
        if self.editor is not None:
            try:
                self.editor.mask_changed.disconnect(self._on_mask_changed)
            except (RuntimeError, TypeError):
                pass
        self.editor = editor
        self.tools.editor = editor
        if editor is not None:
            editor.mask_changed.connect(self._on_mask_changed)
        self._redraw_mask()
        self.editor_changed.emit(editor)

    def _redraw_mask(self) -> None:
        self.items["mask"].set_mask(None if self.editor is None else self.editor.mask)
        self._refresh_outline()

    def _on_mask_changed(self, bbox) -> None:
        self.items["mask"].update_mask(self.editor.mask, bbox)
        self._outline_version += 1  # an outline being traced now may have read a torn mask
        self._outline_timer.start()  # outlines and Dice follow once the brush pauses

    def _refresh_outline(self) -> None:
        """Outline, area and Dice of the current mask, computed on a pool thread (a 50 MP
        mask's contours take ~100 ms) and applied only if no newer request was made."""
        editor, cur = self.editor, self.current
        self._outline_version += 1
        if editor is None or cur is None:
            self.items["contour"].set_contours(None)
            self.panel.show_mask_stats(None, None)
            return
        reference = cur.bundle.reference_mask if cur.bundle is not None else None
        # the mask itself, not a copy (50 MB at 50 MP, on the GUI thread): a change while it is
        # traced bumps the version (_on_mask_changed), so a torn read is never shown
        self._outline_pool.start(_OutlineJob(self._outline_version, editor.mask,
                                             reference, self._outline_signals))

    def _on_outline(self, version: int, path, fraction: float, dice_value) -> None:
        if version != self._outline_version:
            return  # the mask changed again meanwhile
        self.items["contour"].setPath(path)
        self.panel.show_mask_stats(fraction, dice_value)
        self.outline_ready.emit()


class _OutlineSignals(QObject):
    done = Signal(int, object, float, object)  # version, QPainterPath, lesion fraction, Dice


class _OutlineJob(QRunnable):
    def __init__(self, version: int, mask: np.ndarray, reference, signals: _OutlineSignals):
        super().__init__()
        self.version, self.mask, self.reference, self.signals = version, mask, reference, signals

    def run(self) -> None:
        mask = self.mask
        path = contours_path(mask_contours(mask))
        fraction = float(np.count_nonzero(mask)) / max(mask.size, 1)
        overlap = None if self.reference is None else dice(mask, self.reference)
        self.signals.done.emit(self.version, path, fraction, overlap)
