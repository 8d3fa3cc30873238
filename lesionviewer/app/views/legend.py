"""A small legend in the photo's corner naming the overlays now drawn, in their own pens."""

from __future__ import annotations

import dataclasses

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from lesionviewer.app.views.overlays import OUTLINE_WIDTH, REFERENCE_STYLE, SAMPLE_WIDTH

LEGEND_ORDER = ("contour", "mask", "reference", "samples", "variance")
LEGEND_LABELS = {
    "contour": "Mask outline (model, your edits)",
    "mask": "Mask fill",
    "reference": "Reference mask",
    "samples": "Sample outlines (model's samples)",
    "variance": "Variance (samples disagree)",
}


@dataclasses.dataclass(frozen=True)
class LegendEntry:
    """kind: "line" (colour, width, style), "fill" (colour) or "ramp" (colormap name)."""

    name: str
    label: str
    kind: str
    colour: str = "#ffffff"
    width: float = 2.0
    style: Qt.PenStyle = Qt.SolidLine
    colormap: str = "viridis"


def legend_entries(settings, shown: dict[str, bool]) -> list[LegendEntry]:
    """The entries for the overlays in ``shown`` (name -> drawn now), in a fixed order, in the
    pens :class:`~lesionviewer.app.views.case_view.CaseView` draws them with."""
    make = {
        "contour": lambda: LegendEntry("contour", LEGEND_LABELS["contour"], "line",
                                       settings.contour_colour, OUTLINE_WIDTH),
        "mask": lambda: LegendEntry("mask", LEGEND_LABELS["mask"], "fill", settings.mask_colour),
        "reference": lambda: LegendEntry("reference", LEGEND_LABELS["reference"], "line",
                                         settings.reference_colour, OUTLINE_WIDTH,
                                         REFERENCE_STYLE),
        "samples": lambda: LegendEntry("samples", LEGEND_LABELS["samples"], "line",
                                       settings.sample_colour, SAMPLE_WIDTH),
        "variance": lambda: LegendEntry("variance", LEGEND_LABELS["variance"], "ramp",
                                        colormap=settings.variance_colormap),
    }
    return [make[name]() for name in LEGEND_ORDER if shown.get(name)]


class _Swatch(QWidget):
    """A short sample of an overlay's pen, fill or colour ramp."""

    def __init__(self, entry: LegendEntry, parent=None):
        super().__init__(parent)
        self.entry = entry
        self.setFixedSize(28, 12)

    def paintEvent(self, event) -> None:
        e, p = self.entry, QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        r = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        if e.kind == "line":
            pen = QPen(QColor(e.colour), e.width, e.style)
            p.setPen(pen)
            p.drawLine(QPointF(r.left(), r.center().y()), QPointF(r.right(), r.center().y()))
        elif e.kind == "fill":
            colour = QColor(e.colour)
            colour.setAlphaF(0.5)
            p.fillRect(r, colour)
        else:
            gradient = QLinearGradient(r.topLeft(), r.topRight())
            lut = pg.colormap.get(e.colormap).getLookupTable(0.0, 1.0, 5, alpha=False)
            for i, (red, green, blue) in enumerate(lut):
                gradient.setColorAt(i / 4, QColor(int(red), int(green), int(blue)))
            p.fillRect(r, gradient)
        p.end()


class OverlayLegend(QWidget):
    """Child widget of the canvas, in its top-left corner; hidden when nothing is drawn."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("overlay-legend")
        self.setAttribute(Qt.WA_StyledBackground, True)
        self.setAttribute(Qt.WA_TransparentForMouseEvents)  # never in the way of the tools
        self.setStyleSheet("#overlay-legend {background: rgba(20, 20, 22, 190); "
                           "border-radius: 4px;} QLabel {color: #e8eaed; font-size: 11px;}")
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(6, 4, 8, 4)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(2)
        self._entries: list[LegendEntry] = []
        self.move(8, 8)
        self.hide()

    def set_entries(self, entries: list[LegendEntry]) -> None:
        if entries == self._entries:
            return
        self._entries = list(entries)
        while self._grid.count():
            widget = self._grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for row, entry in enumerate(entries):
            swatch, label = _Swatch(entry, self), QLabel(entry.label, self)
            self._grid.addWidget(swatch, row, 0)
            self._grid.addWidget(label, row, 1)
            # Children added to a legend already on screen are only shown by a queued call,
            # after adjustSize() has sized it without them (an empty sliver): show them now.
            swatch.show()
            label.show()
        self.setVisible(bool(entries))
        self._grid.activate()
        self.adjustSize()
        self.raise_()

    def labels(self) -> list[str]:
        """What the legend lists now (empty when hidden)."""
        return [e.label for e in self._entries] if self.isVisible() else []

    def names(self) -> list[str]:
        return [e.name for e in self._entries] if self.isVisible() else []

