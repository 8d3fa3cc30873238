"""Overlay items drawn over the photo: mask fill, contours, variance heatmap, region marks.

Colours are the Okabe-Ito palette (Okabe & Ito 2008), told apart with the common colour-vision
deficiencies, and each outline also differs in line style or width: the model's outline solid,
the reference dashed, the samples thin, the polygon being drawn dotted with its corners.

Masks are drawn from an 8-bit indexed QImage that shares a numpy buffer, so an edit only
rewrites the pixels inside its bounding box and repaints that rectangle (a 50 MP mask is not
re-uploaded per brush dab).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QGraphicsPathItem

from lesionviewer.app.views.geometry import Contour


class IndexedImageItem(QGraphicsObject):
    """An HxW uint8 index image drawn through a colour table (index 0 is usually transparent).

    The pixel at (row i, column j) covers [j, j+1) x [i, i+1) in view coordinates.
    """

    def __init__(self, colours: list[int] | None = None):
        super().__init__()
        self._buffer: np.ndarray | None = None  # H x stride uint8; QImage reads it directly
        self._qimage: QImage | None = None
        self._colours = colours or [0, 0xFFFFFFFF]
        self.setFlag(QGraphicsItem.ItemIgnoresParentOpacity, False)

    def set_colours(self, colours: list[int]) -> None:
        """Colour table as 0xAARRGGBB ints, one per index value."""
        self._colours = list(colours)
        if self._qimage is not None:
            self._qimage.setColorTable(self._colours)
            self.update()

    def set_indices(self, indices: np.ndarray | None) -> None:
        """Replace the whole picture with an HxW uint8 index array (None clears)."""
        self.prepareGeometryChange()
        if indices is None:
            self._buffer, self._qimage = None, None
            self.update()
            return
        h, w = indices.shape
        stride = (w + 3) // 4 * 4
        self._buffer = np.zeros((h, stride), np.uint8)
        self._buffer[:, :w] = indices
        self._qimage = QImage(self._buffer.data, w, h, stride, QImage.Format_Indexed8)
        self._qimage.setColorTable(self._colours)
        self.update()

    def update_indices(self, indices: np.ndarray, bbox: tuple[int, int, int, int]) -> None:
        """Copy ``indices[y0:y1, x0:x1]`` (full-size HxW array) in and repaint only that box."""
        if self._buffer is None:
            self.set_indices(indices)
            return
        y0, y1, x0, x1 = bbox
        self._buffer[y0:y1, x0:x1] = indices[y0:y1, x0:x1]
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def has_image(self) -> bool:
        return self._qimage is not None

    def boundingRect(self) -> QRectF:
        if self._qimage is None:
            return QRectF()
        return QRectF(0, 0, self._qimage.width(), self._qimage.height())

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._qimage is not None:
            painter.drawImage(QPointF(0, 0), self._qimage)


class MaskFillItem(IndexedImageItem):
    """A bool mask as a flat translucent fill."""

    def set_colour(self, colour: QColor) -> None:
        self.set_colours([0, QColor(colour).rgba()])

    def set_mask(self, mask: np.ndarray | None) -> None:
        self.set_indices(None if mask is None else mask.view(np.uint8))

    def update_mask(self, mask: np.ndarray, bbox) -> None:
        self.update_indices(mask.view(np.uint8), bbox)


def colormap_table(name: str, fade_levels: int = 24) -> list[int]:
    """256 ARGB entries of a pyqtgraph colormap; the lowest ``fade_levels`` fade to clear,
    so pixels where the samples agree leave the photo visible."""
    lut = pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False)
    table = []
    for i, (r, g, b) in enumerate(lut):
        a = 255 if i >= fade_levels else int(255 * i / fade_levels)
        table.append((a << 24) | (int(r) << 16) | (int(g) << 8) | int(b))
    return table


class ContourItem(QGraphicsPathItem):
    """Closed polylines with a cosmetic pen (same width on screen at every zoom)."""

    def __init__(self, colour: str = "#ffff00", width: float = 2.0, style=Qt.SolidLine):
        super().__init__()
        self.set_pen(colour, width, style)

    def set_pen(self, colour: str, width: float = 2.0, style=Qt.SolidLine) -> None:
        pen = QPen(QColor(colour), width, style)
        pen.setCosmetic(True)
        pen.setJoinStyle(Qt.RoundJoin)
        self.setPen(pen)

    def set_contours(self, contours: list[Contour] | None) -> None:
        self.setPath(contours_path(contours or []))


def contours_path(contours: list[Contour]) -> QPainterPath:
    """All contours (each Kx2 float x, y) as closed polylines in one QPainterPath.

    Built by pyqtgraph's ``arrayToQPath`` from one packed array (a constant number of Qt
    calls whatever the point count) rather than one ``lineTo`` per point: Qt calls cost a
    Python round trip each, and PySide6 6.12.0 on Python 3.11 dropped a reference to None per
    void call, which aborted the app (none_dealloc) after a few thousand outline points.
    """
    closed = [np.vstack([c, c[:1]]).astype(np.float64) for c in contours if len(c) >= 2]
    if not closed:
        return QPainterPath()
    points = np.concatenate(closed)
    connect = np.ones(len(points), np.int32)
    connect[np.cumsum([len(c) for c in closed]) - 1] = 0  # no line from one contour to the next
    return pg.arrayToQPath(points[:, 0], points[:, 1], connect=connect, finiteCheck=False)


# Okabe-Ito colours
SKY_BLUE, ORANGE, BLUISH_GREEN = "#56b4e9", "#e69f00", "#009e73"
VERMILLION, REDDISH_PURPLE, WHITE = "#d55e00", "#cc79a7", "#ffffff"
OUTLINE_WIDTH = 2.0  # model outline and reference, screen pixels
SAMPLE_WIDTH = 1.5  # thinner than the outlines, but visible at fit zoom (1.3 px was not)
REFERENCE_STYLE = Qt.DashLine
POLYGON_STYLE = Qt.DotLine


class SampleContoursItem(QGraphicsPathItem):
    """All sample masks' outlines in one thin pen: where they spread apart, the border is unsure."""

    def __init__(self, colour: str = BLUISH_GREEN):
        super().__init__()
        self.set_colour(colour)

    def set_colour(self, colour: str) -> None:
        pen = QPen(QColor(colour), SAMPLE_WIDTH)
        pen.setCosmetic(True)
        self.setPen(pen)

    def set_samples(self, samples: list[list[Contour]] | None) -> None:
        self.setPath(contours_path([c for contours in samples or [] for c in contours]))


class BrushCursorItem(QGraphicsPathItem):
    """The brush footprint circle that follows the mouse (radius in image pixels)."""

    def __init__(self):
        super().__init__()
        pen = QPen(QColor(255, 255, 255, 230), 1.5)
        pen.setCosmetic(True)
        self.setPen(pen)
        self._radius = 10.0
        self.setVisible(False)

    def set_radius(self, radius: float) -> None:
        self._radius = radius
        path = QPainterPath()
        path.addEllipse(QPointF(0, 0), radius, radius)
        self.setPath(path)

    def set_eraser(self, eraser: bool) -> None:
        pen = self.pen()
        pen.setStyle(Qt.DashLine if eraser else Qt.SolidLine)
        self.setPen(pen)


class PolygonPreviewItem(QGraphicsPathItem):
    """The polygon being drawn: placed vertices plus a rubber band to the cursor, dotted (no
    overlay uses dots), white when adding and vermillion when cutting out."""

    def __init__(self):
        super().__init__()
        pen = QPen(QColor(WHITE), 1.5, POLYGON_STYLE)
        pen.setCosmetic(True)
        self.setPen(pen)

    def set_points(self, points: list[tuple[float, float]], cursor=None, subtract=False) -> None:
        pen = self.pen()
        pen.setColor(QColor(VERMILLION if subtract else WHITE))
        self.setPen(pen)
        if not points:
            self.setPath(QPainterPath())
            return
        # One packed array for the polyline, the rubber band and a small diamond per vertex:
        # redrawn on every mouse move, so a constant number of Qt calls (see contours_path).
        line = np.asarray(list(points) + ([cursor] if cursor is not None else []), np.float64)
        diamond = np.array([[0.5, 0], [0, 0.5], [-0.5, 0], [0, -0.5], [0.5, 0]])
        dots = (np.asarray(points, np.float64)[:, None, :] + diamond[None]).reshape(-1, 2)
        xy = np.concatenate([line, dots])
        connect = np.ones(len(xy), np.int32)
        connect[len(line) - 1] = 0
        connect[len(line) + np.arange(1, len(points) + 1) * len(diamond) - 1] = 0
        self.setPath(pg.arrayToQPath(xy[:, 0], xy[:, 1], connect=connect, finiteCheck=False))
