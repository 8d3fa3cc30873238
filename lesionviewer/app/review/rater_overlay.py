"""Compare raters: each rater's latest mask as an outline on the photo, one pen per rater.

The pens are Okabe-Ito colours the other overlays do not use for an outline (yellow,
vermillion, reddish purple, blue, white), each with its own dash pattern, so two raters are
told apart without colour vision too; the canvas legend names them.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, Qt

from lesionviewer.app.views.geometry import Contour
from lesionviewer.app.views.legend import LegendEntry
from lesionviewer.app.views.overlays import OUTLINE_WIDTH, ContourItem

Z_RATERS = 45  # above the mask outline (40): a rater's line is drawn over the model's
RATER_PENS = (  # colour, line style
    ("#f0e442", Qt.DashDotLine),  # yellow
    ("#d55e00", Qt.DashDotDotLine),  # vermillion
    ("#cc79a7", Qt.DashLine),  # reddish purple
    ("#0072b2", Qt.DashDotLine),  # blue
    ("#ffffff", Qt.DashDotDotLine),  # white
)


@dataclasses.dataclass(frozen=True)
class RaterOutline:
    """One rater's latest mask as outlines: Kx2 float32 (x, y) polylines in image pixels."""

    rater: str
    number: int  # the rater's version number of that mask
    contours: list[Contour] = dataclasses.field(repr=False)


def rater_pen(index: int) -> tuple[str, Qt.PenStyle]:
    return RATER_PENS[index % len(RATER_PENS)]


class RaterOverlay(QObject):
    """The outlines of every rater of the case on screen, shown while "compare" is on."""

    def __init__(self, canvas, parent=None):
        super().__init__(parent)
        self.canvas = canvas
        self.visible = False
        self.outlines: list[RaterOutline] = []
        self._items: list[ContourItem] = []

    def set_outlines(self, outlines: list[RaterOutline]) -> None:
        """The raters of the case on screen (sorted by name, so pens stay put per case)."""
        self.outlines = sorted(outlines, key=lambda o: o.rater.casefold())
        while len(self._items) < len(self.outlines):
            item = ContourItem(width=OUTLINE_WIDTH)
            self.canvas.add_overlay(item, Z_RATERS)
            self._items.append(item)
        for i, item in enumerate(self._items):
            if i < len(self.outlines):
                colour, style = rater_pen(i)
                item.set_pen(colour, OUTLINE_WIDTH, style)
                item.set_contours(self.outlines[i].contours)
            else:
                item.set_contours(None)
        self._apply_visibility()

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        for i, item in enumerate(self._items):
            item.setVisible(self.visible and i < len(self.outlines))

    def legend_entries(self) -> list[LegendEntry]:
        """One legend row per rater drawn now, in the rater's pen."""
        if not self.visible:
            return []
        entries = []
        for i, outline in enumerate(self.outlines):
            colour, style = rater_pen(i)
            entries.append(LegendEntry(f"rater:{outline.rater}",
                                       f"{outline.rater} (version {outline.number})", "line",
                                       colour, OUTLINE_WIDTH, style))
        return entries
