"""The mask being corrected, as a Qt-free model: tools change it, views listen and redraw.

Every change is one :class:`MaskDelta` (bounding box, values before, values after), so undo
stores only what changed (napari ``layers/labels/labels.py`` does the same).

Coordinates: points are ``(x, y)`` floats in full-resolution image pixels, x to the right and
y down, where pixel (row i, column j) covers ``[j, j + 1) x [i, i + 1)``; its centre is
``(j + 0.5, i + 0.5)``. A view that maps a mouse position into image pixels can pass it as is.
Bounding boxes are ``(y0, y1, x0, x1)``, half-open: rows ``y0 <= i < y1``, columns
``x0 <= j < x1``, i.e. ``mask[y0:y1, x0:x1]``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np

BBox = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open
Listener = Callable[[BBox], None]

#: Smallest effective brush radius: sqrt(1/2) px reaches the centre of the pixel under the cursor.
MIN_RADIUS = math.sqrt(0.5)


class Tool(str, enum.Enum):
    """What made a change; the value is the :attr:`MaskDelta.label` and the summary's key."""

    BRUSH = "brush"
    ERASER = "eraser"
    POLYGON_ADD = "polygon add"
    POLYGON_REMOVE = "polygon remove"
    FILL_HOLES = "fill holes"
    KEEP_LARGEST = "keep largest region"
    RESET = "reset"


class MaskDelta:
    """One undoable change: the values inside ``bbox`` before and after it.

    bbox: (y0, y1, x0, x1), half-open, tight around the pixels that changed.
    before, after: (y1-y0)x(x1-x0) bool arrays (fresh copies on each access; stored bit-packed,
    so a delta costs 2 bits per pixel of its box, see :attr:`nbytes`).
    label: the :class:`Tool` value (or any text) naming what made the change.
    pixels_added / pixels_removed: lesion pixels the change adds / removes (applied forward).
    """

    __slots__ = ("bbox", "label", "pixels_added", "pixels_removed", "_before", "_after")

    def __init__(self, bbox: BBox, before: np.ndarray, after: np.ndarray, label: str) -> None:
        y0, y1, x0, x1 = (int(v) for v in bbox)
        shape = (y1 - y0, x1 - x0)
        before = np.asarray(before, dtype=bool)
        after = np.asarray(after, dtype=bool)
        if before.shape != shape or after.shape != shape:
            raise ValueError(f"delta arrays {before.shape}/{after.shape} do not fit bbox {bbox}")
        self.bbox: BBox = (y0, y1, x0, x1)
        self.label = str(label.value if isinstance(label, Tool) else label)
        self.pixels_added = int(np.count_nonzero(after & ~before))
        self.pixels_removed = int(np.count_nonzero(before & ~after))
        self._before = np.packbits(before, axis=None)
        self._after = np.packbits(after, axis=None)

    @property
    def shape(self) -> tuple[int, int]:
        y0, y1, x0, x1 = self.bbox
        return (y1 - y0, x1 - x0)

    @property
    def before(self) -> np.ndarray:
        return self._unpack(self._before)

    @property
    def after(self) -> np.ndarray:
        return self._unpack(self._after)

    @property
    def nbytes(self) -> int:
        """Memory the delta holds (both packed arrays), for the history's memory cap."""
        return int(self._before.nbytes + self._after.nbytes) + 64

    def _unpack(self, packed: np.ndarray) -> np.ndarray:
        height, width = self.shape
        return np.unpackbits(packed, count=height * width).astype(bool).reshape(height, width)

    def __repr__(self) -> str:
        return (
            f"MaskDelta(label={self.label!r}, bbox={self.bbox}, "
            f"added={self.pixels_added}, removed={self.pixels_removed})"
        )


class MaskDocument:
    """An HxW bool lesion mask (True = lesion) that tools edit and views observe.

    Each editing method changes the mask, tells every listener the changed box, and returns the
    :class:`MaskDelta` (or None when no pixel changed). Undo/redo is :meth:`apply` with
    ``forward=False`` / ``True``; the document keeps no history itself.
    """

    def __init__(self, mask: np.ndarray) -> None:
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"a mask is HxW, got shape {mask.shape}")
        self._mask = np.array(mask, dtype=bool, order="C")
        self._listeners: list[Listener] = []

    # -- reading ------------------------------------------------------------------------

    @property
    def mask(self) -> np.ndarray:
        """HxW bool, a read-only view of the current mask (copy it to keep a snapshot)."""
        view = self._mask.view()
        view.flags.writeable = False
        return view

    @property
    def shape(self) -> tuple[int, int]:
        return self._mask.shape  # type: ignore[return-value]

    @property
    def lesion_pixels(self) -> int:
        return int(np.count_nonzero(self._mask))

    # -- listeners ----------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn((y0, y1, x0, x1))`` after every change, with the box that changed."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        self._listeners.remove(fn)

    def _notify(self, bbox: BBox) -> None:
        for fn in list(self._listeners):
            fn(bbox)

    # -- tools --------------------------------------------------------------------------

    def paint_stroke(
        self,
        points: Sequence[tuple[float, float]],
        radius: float,
        value: bool,
        label: str | Tool | None = None,
    ) -> MaskDelta | None:
        """Stamp a round brush of ``radius`` px along the polyline through ``points``.

        Every pixel whose centre lies within ``radius`` (at least :data:`MIN_RADIUS`) of the
        path becomes ``value`` (True = brush, False = eraser); consecutive points are joined,
        so a fast mouse leaves no gaps. Parts outside the image are clipped. Returns one delta
        for the whole stroke, labelled "brush"/"eraser" unless ``label`` is given.
        """
        label = label or (Tool.BRUSH if value else Tool.ERASER)
        pts = [(float(x), float(y)) for x, y in points if math.isfinite(x) and math.isfinite(y)]
        if not pts:
            return None
        r = max(float(radius), MIN_RADIUS)
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        box = self._clip_box(min(ys) - r - 1, max(ys) + r + 1, min(xs) - r - 1, max(xs) + r + 1)
        if box is None:
            return None
        footprint = np.zeros((box[1] - box[0], box[3] - box[2]), dtype=bool)
        segments = zip(pts, pts[1:]) if len(pts) > 1 else [(pts[0], pts[0])]
        for p0, p1 in segments:
            _stamp_segment(footprint, (box[0], box[2]), p0, p1, r)
        return self._paint_footprint(box, footprint, bool(value), label)

    def begin_stroke(self, radius: float, value: bool, label: str | Tool | None = None) -> Stroke:
        """Start a stroke painted live, point by point (mouse move), finished as one delta."""
        return Stroke(self, radius, value, label or (Tool.BRUSH if value else Tool.ERASER))

    def fill_polygon(
        self, points: Sequence[tuple[float, float]], value: bool, label: str | Tool | None = None
    ) -> MaskDelta | None:
        """Set every pixel inside or on the outline of the closed polygon to ``value``.

        Rasterised by cv2.fillPoly: vertices snap to the nearest pixel centre and pixels on the
        outline are included (a square from (10, 10) to (20, 20) fills columns and rows 10..20).
        Needs 3 or more points (fewer: nothing happens, returns None); clipped to the image.
        """
        label = label or (Tool.POLYGON_ADD if value else Tool.POLYGON_REMOVE)
        pts = np.array([(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)], float)
        if len(pts) < 3:
            return None
        box = self._clip_box(pts[:, 1].min() - 1, pts[:, 1].max() + 1, pts[:, 0].min() - 1, pts[:, 0].max() + 1)
        if box is None:
            return None
        y0, y1, x0, x1 = box
        canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        # cv2 puts integer coordinates on pixel centres, hence the half-pixel shift.
        shift = 8
        local = np.rint((pts - [x0 + 0.5, y0 + 0.5]) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(canvas, [local.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=shift)
        return self._paint_footprint(box, canvas.astype(bool), bool(value), label)

    def fill_holes(self) -> MaskDelta | None:
        """Make lesion every background region that does not touch the image border."""
        background = (~self._mask).view(np.uint8)
        count, labels = cv2.connectedComponents(background, connectivity=4)
        if count <= 1:
            return None
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        outside = np.zeros(count, dtype=bool)
        outside[np.unique(border)] = True
        outside[0] = True  # label 0 is the lesion itself
        holes = ~outside[labels]
        return self._commit_full(self._mask | holes, Tool.FILL_HOLES)

    def keep_largest_region(self) -> MaskDelta | None:
        """Keep only the largest 8-connected lesion region (ties: the first in raster order)."""
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            self._mask.view(np.uint8), connectivity=8
        )
        if count <= 2:
            return None
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        return self._commit_full(labels == largest, Tool.KEEP_LARGEST)

    def reset_to(self, mask: np.ndarray, label: str | Tool = Tool.RESET) -> MaskDelta | None:
        """Replace the whole mask (e.g. with the consensus mask again) as one undoable change."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.shape:
            raise ValueError(f"new mask is {mask.shape}, the document is {self.shape}")
        return self._commit_full(mask, label)

    def apply(self, delta: MaskDelta, forward: bool = True) -> None:
        """Redo (``forward=True``: write ``after``) or undo (write ``before``) a delta."""
        y0, y1, x0, x1 = delta.bbox
        if y0 < 0 or x0 < 0 or y1 > self.shape[0] or x1 > self.shape[1]:
            raise ValueError(f"delta box {delta.bbox} lies outside the {self.shape} mask")
        self._mask[y0:y1, x0:x1] = delta.after if forward else delta.before
        self._notify(delta.bbox)

    def combine(self, deltas: Sequence[MaskDelta], label: str | Tool) -> MaskDelta | None:
        """Merge the most recent ``deltas`` (oldest first, all already applied) into one.

        The result undoes all of them at once; the mask itself is not changed.
        """
        deltas = list(deltas)
        if not deltas:
            return None
        y0 = min(d.bbox[0] for d in deltas)
        y1 = max(d.bbox[1] for d in deltas)
        x0 = min(d.bbox[2] for d in deltas)
        x1 = max(d.bbox[3] for d in deltas)
        after = self._mask[y0:y1, x0:x1].copy()
        before = after.copy()
        for d in reversed(deltas):
            dy0, dy1, dx0, dx1 = d.bbox
            before[dy0 - y0 : dy1 - y0, dx0 - x0 : dx1 - x0] = d.before
        return _tight_delta((y0, x0), before, after, label)

    # -- internals ----------------------------------------------------------------------

    def _clip_box(self, y0: float, y1: float, x0: float, x1: float) -> BBox | None:
        height, width = self.shape
        box = (
            max(0, math.floor(y0)),
            min(height, math.ceil(y1)),
            max(0, math.floor(x0)),
            min(width, math.ceil(x1)),
        )
        if box[0] >= box[1] or box[2] >= box[3]:
            return None
        return box

    def _paint_footprint(self, box: BBox, footprint: np.ndarray, value: bool, label) -> MaskDelta | None:
        y0, y1, x0, x1 = box
        before = self._mask[y0:y1, x0:x1]
        after = before.copy()
        after[footprint] = value
        return self._commit(_tight_delta((y0, x0), before, after, label))

    def _commit_full(self, new_mask: np.ndarray, label) -> MaskDelta | None:
        return self._commit(_tight_delta((0, 0), self._mask, new_mask, label))

    def _commit(self, delta: MaskDelta | None) -> MaskDelta | None:
        if delta is not None:
            self.apply(delta, forward=True)
        return delta


class Stroke:
    """A brush or eraser stroke in progress (from :meth:`MaskDocument.begin_stroke`).

    ``add_point`` paints the segment from the previous point at once (listeners see it live);
    ``finish`` returns the whole stroke as one delta for the undo stack; ``cancel`` reverts it.
    """

    def __init__(self, document: MaskDocument, radius: float, value: bool, label) -> None:
        self._document = document
        self.radius = float(radius)
        self.value = bool(value)
        self.label = label
        self._last: tuple[float, float] | None = None
        self._pieces: list[MaskDelta] = []
        self.finished = False

    def add_point(self, x: float, y: float) -> None:
        if self.finished:
            raise RuntimeError("the stroke is already finished")
        segment = [(x, y)] if self._last is None else [self._last, (x, y)]
        self._last = (float(x), float(y))
        piece = self._document.paint_stroke(segment, self.radius, self.value, self.label)
        if piece is not None:
            self._pieces.append(piece)

    def finish(self) -> MaskDelta | None:
        """End the stroke; one delta covering all of it, or None when nothing changed."""
        self.finished = True
        return self._document.combine(self._pieces, self.label)

    def cancel(self) -> None:
        """Undo everything this stroke painted (e.g. Escape pressed mid-stroke)."""
        self.finished = True
        for piece in reversed(self._pieces):
            self._document.apply(piece, forward=False)
        self._pieces.clear()


def _tight_delta(origin: tuple[int, int], before: np.ndarray, after: np.ndarray, label) -> MaskDelta | None:
    """A delta over the smallest box holding every changed pixel, or None when none changed."""
    changed = before != after
    rows = np.flatnonzero(changed.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(changed.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    oy, ox = origin
    return MaskDelta(
        (oy + r0, oy + r1, ox + c0, ox + c1),
        before[r0:r1, c0:c1],
        after[r0:r1, c0:c1],
        label,
    )


def _stamp_segment(
    footprint: np.ndarray, origin: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], r: float
) -> None:
    """Set footprint pixels whose centre is within ``r`` of segment p0-p1 (image coordinates).

    Long segments are cut into pieces so each window stays close to the capsule's area.
    """
    (ax, ay), (bx, by) = p0, p1
    length = math.hypot(bx - ax, by - ay)
    pieces = max(1, math.ceil(length / max(2 * r, 32.0)))
    for k in range(pieces):
        t0, t1 = k / pieces, (k + 1) / pieces
        _stamp_capsule(
            footprint, origin, (ax + (bx - ax) * t0, ay + (by - ay) * t0),
            (ax + (bx - ax) * t1, ay + (by - ay) * t1), r,
        )


def _stamp_capsule(footprint: np.ndarray, origin, p0, p1, r: float) -> None:
    oy, ox = origin
    (ax, ay), (bx, by) = p0, p1
    height, width = footprint.shape
    i0 = max(0, math.floor(min(ay, by) - r - 0.5) - oy)
    i1 = min(height, math.ceil(max(ay, by) + r + 0.5) - oy)
    j0 = max(0, math.floor(min(ax, bx) - r - 0.5) - ox)
    j1 = min(width, math.ceil(max(ax, bx) + r + 0.5) - ox)
    if i0 >= i1 or j0 >= j1:
        return
    cy = np.arange(i0, i1, dtype=np.float64)[:, None] + (oy + 0.5)
    cx = np.arange(j0, j1, dtype=np.float64)[None, :] + (ox + 0.5)
    dx, dy = bx - ax, by - ay
    seg2 = dx * dx + dy * dy
    if seg2 > 0:
        t = np.clip(((cx - ax) * dx + (cy - ay) * dy) / seg2, 0.0, 1.0)
    else:
        t = 0.0
    dist2 = (cx - (ax + t * dx)) ** 2 + (cy - (ay + t * dy)) ** 2
    footprint[i0:i1, j0:j1] |= dist2 <= r * r + 1e-9


def polygon_area_pixels(points: Iterable[tuple[float, float]]) -> float:
    """Shoelace area of a polygon in square pixels (for sanity checks and status text)."""
    pts = list(points)
    area = 0.0
    for (xa, ya), (xb, yb) in zip(pts, pts[1:] + pts[:1]):
        area += xa * yb - xb * ya
    return abs(area) / 2.0
