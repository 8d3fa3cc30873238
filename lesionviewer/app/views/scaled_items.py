"""Images drawn over the whole photo from a display-sized copy (at most DISPLAY_MAX_SIDE px).

A 50 MP photo, mask or heatmap drawn at full resolution froze the GUI for seconds (every
paint scaled 50 M pixels). These items keep a display copy for the fitted view and, once the
view is zoomed in past it, draw the full-resolution pixels of the visible part only (a crop of
at most :data:`MAX_CROP_PIXELS`), so zooming in still shows every pixel.

Coordinates are full-resolution image pixels: the pixel at (row i, column j) covers
[j, j+1) x [i, i+1), whatever the size of the copy drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject

from lesionviewer.app.views.geometry import display_shape, downsample_nearest, nearest_indices

MAX_CROP_PIXELS = 4_000_000  # full-resolution pixels drawn at most per paint when zoomed in

#: (y0, y1, x0, x1) -> that part of the full-resolution picture (uint8 HxW, or HxWx3 RGB)
Source = Callable[[int, int, int, int], np.ndarray]


def _aligned(pixels: np.ndarray) -> np.ndarray:
    """A C-contiguous copy whose rows start on 4-byte boundaries (what QImage requires)."""
    h, w = pixels.shape[:2]
    row = w * (pixels.shape[2] if pixels.ndim == 3 else 1)
    stride = (row + 3) // 4 * 4
    buffer = np.zeros((h, stride), np.uint8)
    buffer[:, :row] = pixels.reshape(h, row)
    return buffer


def halvings(pixels: np.ndarray, min_side: int = 256) -> list[np.ndarray]:
    """Smaller and smaller halves of ``pixels`` (area-averaged) while the shorter side stays
    at least ``min_side``: a smooth draw then never shrinks a copy by more than 2x."""
    out = []
    h, w = pixels.shape[:2]
    while min(h, w) >= min_side:
        h, w = h // 2, w // 2
        pixels = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)
        out.append(pixels)
    return out


class ScaledImageItem(QGraphicsObject):
    """An HxW (index) or HxWx3 (RGB) picture covering a full-size rectangle."""

    def __init__(self, indexed: bool = True, smooth: bool = False):
        super().__init__()
        self._indexed, self._smooth = indexed, smooth
        self._full: tuple[int, int] | None = None  # (H, W) in image pixels
        self._buffer: np.ndarray | None = None  # display copy (rows padded to 4 bytes)
        self._qimage: QImage | None = None
        self._source: Source | None = None
        self._colours: list[int] = [0, 0xFFFFFFFF]
        self._crop_key, self._crop_image = None, None  # the last full-resolution crop drawn
        self._levels: list[tuple[np.ndarray, QImage]] = []  # smooth items: halved copies
        self.setFlag(QGraphicsItem.ItemUsesExtendedStyleOption, True)  # exposedRect is set

    # --- content ---------------------------------------------------------------------------
    def set_colours(self, colours: list[int]) -> None:
        """Colour table as 0xAARRGGBB ints, one per index value (indexed items)."""
        self._colours = list(colours)
        if self._qimage is not None and self._indexed:
            self._qimage.setColorTable(self._colours)
        self._crop_key = None
        self.update()

    def set_display(self, pixels: np.ndarray | None, full_shape: tuple[int, int] | None = None,
                    source: Source | None = None, levels: list[np.ndarray] | None = None) -> None:
        """Show ``pixels`` (the display copy, hxw uint8 or hxwx3 RGB) stretched over
        ``full_shape`` (H, W; default: the copy's own size). ``source`` gives full-resolution
        crops for zoomed-in views; ``levels``, the copy's :func:`halvings` if already made
        (smooth items). None clears."""
        self.prepareGeometryChange()
        self._crop_key, self._crop_image = None, None
        if pixels is None:
            self._full = self._buffer = self._qimage = self._source = None
            self._levels = []
            self.update()
            return
        h, w = pixels.shape[:2]
        self._full = tuple(full_shape) if full_shape is not None else (h, w)
        self._source = source
        self._buffer = _aligned(pixels)
        self._qimage = self._wrap(self._buffer, w, h)
        self._levels = [(self._buffer, self._qimage)]
        if self._smooth:
            for smaller in halvings(pixels) if levels is None else levels:
                buffer = _aligned(smaller)
                self._levels.append((buffer, self._wrap(buffer, *smaller.shape[1::-1])))
        self.update()

    def _wrap(self, buffer: np.ndarray, w: int, h: int) -> QImage:
        fmt = QImage.Format_Indexed8 if self._indexed else QImage.Format_RGB888
        image = QImage(buffer.data, w, h, buffer.shape[1], fmt)
        if self._indexed:
            image.setColorTable(self._colours)
        return image

    def display_shape(self) -> tuple[int, int] | None:
        return None if self._qimage is None else (self._qimage.height(), self._qimage.width())

    def has_image(self) -> bool:
        return self._qimage is not None

    def repaint_region(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """The full-resolution box changed: forget a crop that overlaps it and repaint it."""
        if self._crop_key is not None:
            cy0, cy1, cx0, cx1 = self._crop_key
            if cy0 < y1 and y0 < cy1 and cx0 < x1 and x0 < cx1:
                self._crop_key = None
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    # --- drawing ---------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        if self._full is None:
            return QRectF()
        return QRectF(0, 0, self._full[1], self._full[0])

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._qimage is None:
            return
        if self._smooth:
            painter.setRenderHint(QPainter.SmoothPixmapTransform, True)
        crop = self._visible_crop(painter, option)
        if crop is not None:
            y0, y1, x0, x1 = crop
            painter.drawImage(QRectF(x0, y0, x1 - x0, y1 - y0), self._crop(crop))
            return
        painter.drawImage(self.boundingRect(), self._level_for(painter))

    def _level_for(self, painter: QPainter) -> QImage:
        """The smallest copy with at least one pixel per screen pixel: scaling a 2048 px copy
        down smoothly to a 700 px view took ~40 ms per paint."""
        zoom = abs(painter.worldTransform().m11()) or 1.0  # screen pixels per image pixel
        full_w = self._full[1]
        chosen = self._qimage
        for _, image in self._levels:
            if image.width() < zoom * full_w:
                break
            chosen = image
        return chosen

    def _visible_crop(self, painter: QPainter, option) -> tuple[int, int, int, int] | None:
        """The full-resolution box to draw instead of the display copy, or None."""
        if self._source is None or self._full is None:
            return None
        full_h, full_w = self._full
        scale = self._qimage.width() / full_w  # display pixels per image pixel
        zoom = abs(painter.worldTransform().m11()) or 1.0  # screen pixels per image pixel
        if scale >= 1.0 or zoom <= scale * 1.25:
            return None  # the display copy has (nearly) every pixel the screen can show
        r = option.exposedRect.intersected(self.boundingRect())
        device = painter.device()  # what the screen (or picture) can show of the item
        if device is not None:
            inverse, invertible = painter.worldTransform().inverted()
            if invertible:
                r = r.intersected(inverse.mapRect(QRectF(0, 0, device.width(), device.height())))
        x0, y0 = max(0, int(r.left())), max(0, int(r.top()))
        x1, y1 = min(full_w, int(np.ceil(r.right()))), min(full_h, int(np.ceil(r.bottom())))
        if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) > MAX_CROP_PIXELS:
            return None
        return y0, y1, x0, x1

    def _crop(self, box: tuple[int, int, int, int]) -> QImage:
        if self._crop_key != box:
            y0, y1, x0, x1 = box
            pixels = np.asarray(self._source(y0, y1, x0, x1))
            self._crop_buffer = _aligned(pixels)
            self._crop_image = self._wrap(self._crop_buffer, x1 - x0, y1 - y0)
            self._crop_key = box
        return self._crop_image


class ScaledIndexedItem(ScaledImageItem):
    """The variance heatmap: an index image through a colour table (index 0 see-through)."""

    def __init__(self):
        super().__init__(indexed=True)

    def set_indices(self, indices: np.ndarray | None, full_shape=None, source=None) -> None:
        self.set_display(indices, full_shape, source)


class ScaledMaskFill(ScaledImageItem):
    """The editable HxW bool mask as a translucent fill; an edit redraws only its box."""

    def __init__(self):
        super().__init__(indexed=True)
        self._mask: np.ndarray | None = None
        self._rows = self._cols = None

    def set_colour(self, colour) -> None:
        self.set_colours([0, QColor(colour).rgba()])

    def set_mask(self, mask: np.ndarray | None) -> None:
        self._mask = mask
        if mask is None:
            self.set_display(None)
            return
        h, w = mask.shape
        dh, dw = display_shape(h, w)
        self._rows, self._cols = nearest_indices(h, dh), nearest_indices(w, dw)
        self.set_display(downsample_nearest(mask, (dh, dw)).view(np.uint8), (h, w),
                         lambda y0, y1, x0, x1: self._mask[y0:y1, x0:x1].view(np.uint8))

    def update_mask(self, mask: np.ndarray, bbox) -> None:
        """``mask`` (full-size) changed inside the half-open box (y0, y1, x0, x1)."""
        if self._buffer is None or mask is not self._mask and mask.shape != self._mask.shape:
            self.set_mask(mask)
            return
        self._mask = mask
        y0, y1, x0, x1 = (int(v) for v in bbox)
        rows, cols = self._rows, self._cols
        # display rows/columns whose sampled pixel lies in the box
        r0, r1 = np.searchsorted(rows, y0), np.searchsorted(rows, y1)
        c0, c1 = np.searchsorted(cols, x0), np.searchsorted(cols, x1)
        if r1 > r0 and c1 > c0:
            self._buffer[r0:r1, c0:c1] = mask[rows[r0:r1]][:, cols[c0:c1]].view(np.uint8)
        self.repaint_region(y0, y1, x0, x1)


class ScaledPhoto(ScaledImageItem):
    """The HxWx3 uint8 RGB photo, smoothly scaled."""

    def __init__(self):
        super().__init__(indexed=False, smooth=True)
        self.setFlag(QGraphicsItem.ItemIgnoresParentOpacity, False)
        self.setAcceptedMouseButtons(Qt.NoButton)
