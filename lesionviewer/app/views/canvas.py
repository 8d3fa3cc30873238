"""The photo view: pyqtgraph ViewBox with the photo, overlay items and a variance colour bar.

Wheel zooms around the cursor, left-drag pans (unless an editing tool takes the mouse, see
tools.py), "Fit" shows the whole photo, "1:1" shows one photo pixel per screen pixel.
Coordinates in the view are full-resolution image pixels, x right, y down.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel

from lesionviewer.app.views.geometry import VARIANCE_MAX, display_shape, downsample_area
from lesionviewer.app.views.scaled_items import ScaledPhoto, halvings

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
PLACEHOLDER = ("Open photos or a folder of photos\n(File ▸ Open, Ctrl+O, or Ctrl+Shift+O for a "
               "folder)\nor drop them here.")


class ImageCanvas(pg.GraphicsLayoutWidget):
    """Shows one photo; overlays are added with :meth:`add_overlay`."""

    hovered = Signal(float, float)  # image x, y under the cursor (may lie outside the photo)
    left = Signal()  # cursor left the photo view

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(QColor("#202124"))
        self.ci.layout.setContentsMargins(0, 8, 2, 8)  # the colour bar's end labels fit
        self.view = self.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.view.setMouseEnabled(x=True, y=True)
        self.photo = ScaledPhoto()  # display-sized copy; full pixels only when zoomed in
        self.photo.setZValue(0)
        self._photo_version = 0
        self._photo_signals = _PhotoSignals(self)
        self._photo_signals.done.connect(self._on_display_photo)
        self._photo_pool = QThreadPool(self)
        self._photo_pool.setMaxThreadCount(1)
        self.view.addItem(self.photo)
        self.colorbar = pg.ColorBarItem(
            values=(0.0, VARIANCE_MAX), colorMap=pg.colormap.get("viridis"), interactive=False,
            width=14, rounding=0.01,
        )
        self.colorbar.axis.setWidth(42)  # room for "0.25" whatever the layout did before
        self.colorbar.setToolTip("Variance of the sample masks: 0 = all agree, 0.25 = split")
        self.colorbar.setVisible(False)
        self._image_size: tuple[int, int] | None = None  # (H, W)
        self.setMouseTracking(True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.setAcceptDrops(False)  # dropped files go to the window, which opens them
        self.viewport().setAcceptDrops(False)
        self.placeholder = QLabel(PLACEHOLDER, self)
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setStyleSheet("color: #9aa0a6; font-size: 15px;")
        self.placeholder.setAttribute(Qt.WA_TransparentForMouseEvents)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if hasattr(self, "placeholder"):  # pyqtgraph resizes during its own __init__
            self.placeholder.setGeometry(self.rect())

    def set_placeholder(self, text: str | None) -> None:
        """Text shown instead of a photo (None hides it)."""
        self.placeholder.setText(text or "")
        self.placeholder.setVisible(bool(text))

    # --- content ---------------------------------------------------------------------------
    @property
    def image_size(self) -> tuple[int, int] | None:
        return self._image_size

    def set_photo(self, rgb: np.ndarray | None, keep_view: bool = False) -> None:
        """Show an ``HxWx3 uint8 RGB`` photo (None clears). The array is shared, not copied.

        A photo larger than the display size appears a moment later, from averaged copies made
        on a pool thread (the view is already fitted to it).
        """
        self._photo_version += 1
        if rgb is None:
            self.photo.set_display(None)
            self._image_size = None
            return
        self.set_placeholder(None)
        same_size = self._image_size == rgb.shape[:2]
        self._image_size = rgb.shape[:2]
        h, w = rgb.shape[:2]
        shape = display_shape(h, w)
        source = (lambda y0, y1, x0, x1: rgb[y0:y1, x0:x1])
        if shape == (h, w):
            self.photo.set_display(rgb, (h, w), source)
        else:  # even reading a 50 MP photo once takes a while: a pool thread makes the copies
            self.photo.set_display(None)
            self._photo_pool.start(_DisplayPhotoJob(self._photo_version, rgb, shape, source,
                                                    self._photo_signals))
        self.view.setLimits(
            xMin=-rgb.shape[1], xMax=2 * rgb.shape[1], yMin=-rgb.shape[0], yMax=2 * rgb.shape[0],
            minXRange=4, minYRange=4,
        )
        if not (keep_view and same_size):
            self.fit()

    def _on_display_photo(self, version: int, copies, source) -> None:
        if version == self._photo_version and self._image_size is not None:
            self.photo.set_display(copies[0], self._image_size, source, levels=copies[1:])

    def add_overlay(self, item, z: float) -> None:
        item.setZValue(z)
        self.view.addItem(item)

    def show_colorbar(self, visible: bool, colormap_name: str | None = None) -> None:
        if colormap_name:
            self.colorbar.setColorMap(pg.colormap.get(colormap_name))
        if visible and self.colorbar.scene() is None:
            self.addItem(self.colorbar, row=0, col=1)
        elif not visible and self.colorbar.scene() is not None:
            self.removeItem(self.colorbar)
        self.colorbar.setVisible(visible)

    # --- navigation ------------------------------------------------------------------------
    def fit(self) -> None:
        if self._image_size is None:
            return
        h, w = self._image_size
        self.view.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def one_to_one(self) -> None:
        """One photo pixel per screen pixel, around the current centre."""
        if self._image_size is None:
            return
        rect = self.view.viewRect()
        cx, cy = rect.center().x(), rect.center().y()
        w, h = self.view.width(), self.view.height()  # the view box's size in screen pixels
        self.view.setRange(xRange=(cx - w / 2, cx + w / 2), yRange=(cy - h / 2, cy + h / 2),
                           padding=0)

    def zoom(self, factor: float) -> None:
        """factor > 1 zooms in, around the view centre."""
        self.view.scaleBy((1 / factor, 1 / factor))

    def pixels_per_image_pixel(self) -> float:
        dx, _ = self.view.viewPixelSize()
        return 1.0 / dx if dx else 1.0

    # --- coordinates -----------------------------------------------------------------------
    def image_pos(self, widget_pos) -> QPointF:
        """Widget (viewport) point -> image pixel coordinates (float)."""
        return self.view.mapSceneToView(QPointF(self.mapToScene(widget_pos.toPoint())))

    def widget_pos(self, x: float, y: float) -> QPointF:
        """Image pixel coordinates -> widget (viewport) point; used by tests and tools."""
        return QPointF(self.mapFromScene(self.view.mapViewToScene(QPointF(x, y))))

    def _on_mouse_moved(self, scene_pos) -> None:
        if self.view.sceneBoundingRect().contains(scene_pos):
            p = self.view.mapSceneToView(scene_pos)
            self.hovered.emit(p.x(), p.y())
        else:
            self.left.emit()

    def leaveEvent(self, event) -> None:
        self.left.emit()
        super().leaveEvent(event)

    def keyPressEvent(self, event) -> None:  # let the window's shortcuts see arrow keys etc.
        if event.key() in (Qt.Key_Plus, Qt.Key_Equal):
            self.zoom(1.25)
        elif event.key() == Qt.Key_Minus:
            self.zoom(0.8)
        else:
            super().keyPressEvent(event)


class _PhotoSignals(QObject):
    done = Signal(int, object, object)  # version, [display copy, its halvings], source


class _DisplayPhotoJob(QRunnable):
    """The display copy of a big photo, averaged over each display pixel (cv2 INTER_AREA)."""

    def __init__(self, version: int, rgb: np.ndarray, shape, source, signals: _PhotoSignals):
        super().__init__()
        self.version, self.rgb, self.shape, self.source = version, rgb, shape, source
        self.signals = signals

    def run(self) -> None:
        pixels = downsample_area(self.rgb, self.shape)
        self.rgb = None
        self.signals.done.emit(self.version, [pixels, *halvings(pixels)], self.source)
