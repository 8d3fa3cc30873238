"""Mouse tools on the canvas: pan, brush, eraser, polygon add/subtract, region box.

The :class:`ToolController` filters the canvas viewport's mouse events. With the pan tool (or
the middle/right button) events go on to pyqtgraph, which pans and zooms; with an editing tool
the left button paints into the current :class:`~lesionviewer.app.correction.editing.MaskEditor`.
"""

from __future__ import annotations

import enum
import logging

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPen

from lesionviewer.app.views.canvas import ImageCanvas
from lesionviewer.app.views.overlays import BrushCursorItem, PolygonPreviewItem


class Tool(enum.Enum):
    PAN = "Pan / zoom"
    BRUSH = "Brush"
    ERASER = "Eraser"
    POLYGON_ADD = "Polygon add"
    POLYGON_SUBTRACT = "Polygon subtract"
    REGION = "Region"


log = logging.getLogger(__name__)
EDIT_TOOLS = (Tool.BRUSH, Tool.ERASER, Tool.POLYGON_ADD, Tool.POLYGON_SUBTRACT)
BRUSH_STEP = 1.25  # "]" grows the brush by this factor, "[" shrinks it


class ToolController(QObject):
    """Turns mouse input on the canvas into edits, polygons and the analysis region."""

    tool_changed = Signal(object)  # Tool
    brush_radius_changed = Signal(float)  # image pixels
    region_drawn = Signal(object)  # (x, y, w, h) int image pixels, or None when cleared
    needs_mask = Signal()  # an editing tool was used while there is no mask to edit
    failed = Signal(str)  # an edit raised; the message is for the user

    def __init__(self, canvas: ImageCanvas, parent: QObject | None = None):
        super().__init__(parent)
        self.canvas = canvas
        self._editor = None  # MaskEditor of the case on screen, or None
        self.tool = Tool.PAN
        self.brush_fraction = 0.02  # brush radius as a fraction of the photo's shorter side
        self._stroke = None
        self._polygon: list[tuple[float, float]] = []
        self._region_start: QPointF | None = None
        self.cursor = BrushCursorItem()
        canvas.add_overlay(self.cursor, 100)
        self.polygon_preview = PolygonPreviewItem()
        canvas.add_overlay(self.polygon_preview, 101)
        self.region_roi: pg.RectROI | None = None
        self._region_colour = "#ff9900"
        canvas.viewport().installEventFilter(self)
        canvas.viewport().setMouseTracking(True)

    # --- state -----------------------------------------------------------------------------
    @property
    def editor(self):
        return self._editor

    @editor.setter
    def editor(self, editor) -> None:
        """The mask the tools edit. A stroke or polygon begun on another mask is dropped."""
        if editor is not self._editor:
            self._drop_mask_edits()
        self._editor = editor

    def set_tool(self, tool: Tool) -> None:
        self.cancel()
        self.tool = tool
        self.cursor.setVisible(False)
        self.cursor.set_eraser(tool == Tool.ERASER)
        self._update_roi_interaction()
        self.canvas.viewport().setCursor(
            Qt.ArrowCursor if tool == Tool.PAN else Qt.CrossCursor
        )
        self.tool_changed.emit(tool)

    @property
    def drawing(self) -> bool:
        """A stroke, polygon or box is in progress (Escape cancels it)."""
        return self._stroke is not None or bool(self._polygon) or self._region_start is not None

    @property
    def brush_radius(self) -> float:
        size = self.canvas.image_size
        return max(1.0, self.brush_fraction * (min(size) if size else 500))

    def change_brush_size(self, grow: bool) -> None:
        f = self.brush_fraction * (BRUSH_STEP if grow else 1 / BRUSH_STEP)
        self.brush_fraction = min(0.25, max(0.001, f))
        self.cursor.set_radius(self.brush_radius)
        self.brush_radius_changed.emit(self.brush_radius)

    def cancel(self) -> None:
        """Escape: drop the polygon or box being drawn, undo a stroke in progress."""
        self._drop_mask_edits()
        if self._region_start is not None:
            self._region_start = None
            self.polygon_preview.set_points([])

    def _drop_mask_edits(self) -> None:
        if self._stroke is not None:
            self._stroke.cancel()
            self._stroke = None
        if self._polygon:
            self._polygon = []
            self.polygon_preview.set_points([])

    def finish_polygon(self) -> None:
        """Enter or double-click: fill the polygon drawn so far."""
        points, self._polygon = self._polygon, []
        self.polygon_preview.set_points([])
        if len(points) >= 3 and self.editor is not None:
            self.editor.fill_polygon(points, self.tool == Tool.POLYGON_ADD)

    # --- region ----------------------------------------------------------------------------
    def set_region_colour(self, colour: str) -> None:
        self._region_colour = colour
        if self.region_roi is not None:
            self.region_roi.setPen(self._region_pen())

    def _region_pen(self) -> QPen:
        pen = QPen(QColor(self._region_colour), 2, Qt.DashLine)
        pen.setCosmetic(True)
        return pen

    def show_region(self, region: tuple[int, int, int, int] | None) -> None:
        """Show (or remove, with None) the analysis box without emitting region_drawn."""
        if self.region_roi is not None:
            self.canvas.view.removeItem(self.region_roi)
            self.region_roi = None
        if region is None:
            return
        x, y, w, h = region
        roi = pg.RectROI((x, y), (w, h), pen=self._region_pen(), movable=True,
                         rotatable=False, resizable=True)
        roi.setZValue(90)
        roi.sigRegionChangeFinished.connect(self._on_roi_changed)
        self.canvas.view.addItem(roi)
        self.region_roi = roi
        self._update_roi_interaction()

    def current_region(self) -> tuple[int, int, int, int] | None:
        if self.region_roi is None:
            return None
        pos, size = self.region_roi.pos(), self.region_roi.size()
        return self._clip_region(pos.x(), pos.y(), size.x(), size.y())

    def _clip_region(self, x, y, w, h) -> tuple[int, int, int, int] | None:
        if self.canvas.image_size is None:
            return None
        height, width = self.canvas.image_size
        x0, y0 = max(0, int(round(min(x, x + w)))), max(0, int(round(min(y, y + h))))
        x1, y1 = min(width, int(round(max(x, x + w)))), min(height, int(round(max(y, y + h))))
        if x1 - x0 < 8 or y1 - y0 < 8:  # a click, not a box
            return None
        return (x0, y0, x1 - x0, y1 - y0)

    def _on_roi_changed(self, *_):
        self.region_drawn.emit(self.current_region())

    def _update_roi_interaction(self) -> None:
        roi = self.region_roi
        if roi is None:
            return
        active = self.tool == Tool.REGION
        roi.translatable = active
        for handle in roi.getHandles():
            handle.setVisible(active)

    # --- mouse -----------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:
        # An exception must not escape into Qt's event dispatch (PySide may crash on it).
        try:
            return self._filter(event)
        except Exception:
            log.exception("tool %s failed on %s", self.tool, event.type())
            self._stroke = None
            self.failed.emit("That edit failed; details are in the log file.")
            return True

    def _filter(self, event) -> bool:
        kind = event.type()
        if kind == QEvent.Leave:
            self.cursor.setVisible(False)
            return False
        if self.tool == Tool.PAN or kind not in (
            QEvent.MouseButtonPress, QEvent.MouseMove, QEvent.MouseButtonRelease,
            QEvent.MouseButtonDblClick,
        ):
            return False
        pos = self.canvas.image_pos(event.position())
        x, y = pos.x(), pos.y()
        if kind == QEvent.MouseMove:
            return self._on_move(x, y, event)
        if event.button() != Qt.LeftButton:
            return False  # middle/right buttons keep panning and zooming
        if kind == QEvent.MouseButtonPress:
            return self._on_press(x, y, event)
        if kind == QEvent.MouseButtonRelease:
            return self._on_release(x, y)
        if kind == QEvent.MouseButtonDblClick and self.tool in (Tool.POLYGON_ADD,
                                                                Tool.POLYGON_SUBTRACT):
            # the double-click's first press normally placed this corner already
            tolerance = 2.0 / self.canvas.pixels_per_image_pixel()
            if not self._polygon or max(abs(self._polygon[-1][0] - x),
                                        abs(self._polygon[-1][1] - y)) > tolerance:
                self._polygon.append((x, y))
            self.finish_polygon()
            return True
        return False

    def _on_press(self, x: float, y: float, event) -> bool:
        if self.tool == Tool.REGION:
            if self.region_roi is not None and self._on_roi(event):
                return False  # moving/resizing the existing box: pyqtgraph handles it
            self._region_start = QPointF(x, y)
            self.show_region(None)
            return True
        if self.editor is None:
            self.needs_mask.emit()
            return True
        if self.editor.read_only is not None:  # a signed-off case: the window says why
            return True
        if self.tool in (Tool.BRUSH, Tool.ERASER):
            self._stroke = self.editor.begin_stroke(self.brush_radius, self.tool == Tool.BRUSH)
            self._stroke.add_point(x, y)
        else:
            self._polygon.append((x, y))
            self.polygon_preview.set_points(self._polygon, subtract=self.tool == Tool.POLYGON_SUBTRACT)
        return True

    def _on_move(self, x: float, y: float, event) -> bool:
        if self.tool in (Tool.BRUSH, Tool.ERASER):
            self.cursor.set_radius(self.brush_radius)
            self.cursor.setPos(x, y)
            self.cursor.setVisible(self.canvas.image_size is not None)
        if self._stroke is not None:
            self._stroke.add_point(x, y)
            return True
        if self._polygon:
            self.polygon_preview.set_points(self._polygon, (x, y),
                                            subtract=self.tool == Tool.POLYGON_SUBTRACT)
        if self._region_start is not None:
            s = self._region_start
            self.polygon_preview.set_points([(s.x(), s.y()), (x, s.y()), (x, y), (s.x(), y),
                                             (s.x(), s.y())])
            return True
        return False

    def _on_release(self, x: float, y: float) -> bool:
        if self._stroke is not None:
            stroke, self._stroke = self._stroke, None
            self.editor.end_stroke(stroke)
            return True
        if self._region_start is not None:
            s, self._region_start = self._region_start, None
            self.polygon_preview.set_points([])
            region = self._clip_region(s.x(), s.y(), x - s.x(), y - s.y())
            self.show_region(region)
            self.region_drawn.emit(region)
            return True
        return self.tool in EDIT_TOOLS

    def _on_roi(self, event) -> bool:
        scene_pos = self.canvas.mapToScene(event.position().toPoint())
        roi = self.region_roi
        items = self.canvas.scene().items(scene_pos)
        return any(it is roi or it in roi.getHandles() for it in items)
