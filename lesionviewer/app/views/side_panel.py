"""Right-hand panel: the analysis result in plain words, overlay switches, the threshold."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QSlider, QToolButton, QVBoxLayout, QWidget)

from lesionviewer.app.views.result_summary import DISCLAIMER, ResultSummary
from lesionviewer.engine.analysis import Analysis
from lesionviewer.engine.skintone import MIN_SKIN_PIXELS

OVERLAY_LABELS = {
    "mask": "Mask fill",
    "contour": "Mask outline",
    "variance": "Variance heatmap",
    "samples": "Sample outlines",
    "reference": "Reference mask",
}
__all__ = ["DISCLAIMER", "OVERLAY_LABELS", "SidePanel"]


def skin_tone_text(tone) -> str:
    """The panel's skin-tone line; never a number when the engine could not measure it."""
    if math.isfinite(tone.ita_degrees):
        return f"ITA {tone.ita_degrees:.1f}° ({tone.group})"
    if tone.skin_pixels < MIN_SKIN_PIXELS:
        return "not measurable (too little skin visible)"
    return "not measurable (colour cast: the skin around the lesion is not skin-coloured)"


def _seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


class SidePanel(QWidget):
    overlay_toggled = Signal(str, bool)
    overlay_opacity_changed = Signal(str, float)
    threshold_changed = Signal(float)
    threshold_reset = Signal()  # back to the model's threshold for this case

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self._result_box())
        layout.addWidget(self._overlay_box())
        layout.addWidget(self._details_box())
        layout.addStretch(1)
        self.show_analysis(None)

    # --- construction ----------------------------------------------------------------------
    def _result_box(self) -> QGroupBox:
        box = QGroupBox("Summary")  # the dock around the panel is titled "Result"
        # malignancy (range / withheld), OOD warning and GED: see result_summary.py; the rows
        # below join its form so all labels share one column
        self.summary = ResultSummary()
        QVBoxLayout(box).addWidget(self.summary)
        form = self.summary.form
        self.malignancy, self.disclaimer, self.ged = (
            self.summary.malignancy, self.summary.disclaimer, self.summary.ged)
        self.area = QLabel()
        self.dice = QLabel()
        self.dice.setToolTip("Dice overlap of the current mask with <id>_mask.png next to the photo")
        self.skin = QLabel()
        self.skin.setWordWrap(True)  # "not measurable (...)" must not widen a narrow dock
        self.skin.setToolTip("Individual typology angle of the skin around the lesion "
                             "(Chardon et al. 1991); depends on lighting and camera")
        form.addRow("Lesion area", self.area)
        form.addRow("Dice vs reference", self.dice)
        form.addRow("Skin tone", self.skin)
        return box

    def _overlay_box(self) -> QGroupBox:
        box = QGroupBox("Overlays")
        grid = QGridLayout(box)
        self.overlay_checks: dict[str, QCheckBox] = {}
        self.overlay_sliders: dict[str, QSlider] = {}
        for row, (name, label) in enumerate(OVERLAY_LABELS.items()):
            check = QCheckBox(label)
            slider = QSlider(Qt.Horizontal)
            slider.setRange(0, 100)
            slider.setToolTip("Opacity")
            check.toggled.connect(lambda on, n=name: self.overlay_toggled.emit(n, on))
            slider.valueChanged.connect(
                lambda v, n=name: self.overlay_opacity_changed.emit(n, v / 100.0))
            grid.addWidget(check, row, 0)
            grid.addWidget(slider, row, 1)
            self.overlay_checks[name], self.overlay_sliders[name] = check, slider
        row = len(OVERLAY_LABELS)
        self.threshold_label = QLabel()
        self.threshold_slider = QSlider(Qt.Horizontal)
        self.threshold_slider.setRange(5, 95)
        self.threshold_slider.setToolTip("A pixel is lesion when at least this fraction of the "
                                         "model's samples say so (consensus probability)")
        self.threshold_slider.valueChanged.connect(self._on_threshold)
        self._threshold_timer = QTimer(self, singleShot=True, interval=60)
        self._threshold_timer.timeout.connect(self._emit_threshold)
        self.threshold_reset_button = QToolButton(text="Reset")
        self.threshold_reset_button.setToolTip("Use the model's threshold for this case again")
        self.threshold_reset_button.clicked.connect(self.threshold_reset)
        self._threshold_custom = False
        threshold_row = QHBoxLayout()
        threshold_row.setContentsMargins(0, 0, 0, 0)
        threshold_row.addWidget(self.threshold_slider, 1)
        threshold_row.addWidget(self.threshold_reset_button)
        grid.addWidget(self.threshold_label, row, 0)
        grid.addLayout(threshold_row, row, 1)
        self.variance_legend = QLabel("Heatmap: sample variance 0 (agree) to 0.25 (split); "
                                      "colour bar at the right of the photo.")
        self.variance_legend.setWordWrap(True)
        self.variance_legend.setStyleSheet("color: gray; font-size: 11px;")
        grid.addWidget(self.variance_legend, row + 1, 0, 1, 2)
        return box

    def _details_box(self) -> QGroupBox:
        box = QGroupBox("Details")
        form = QFormLayout(box)
        self.region = QLabel()
        self.model = QLabel()
        self.model.setWordWrap(True)
        self.model.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.timings = QLabel()
        self.timings.setWordWrap(True)
        self.settings = QLabel()
        self.settings.setWordWrap(True)
        form.addRow("Analysed", self.region)
        form.addRow("Model", self.model)
        form.addRow("Time", self.timings)
        form.addRow("Settings", self.settings)
        return box

    # --- state in --------------------------------------------------------------------------
    def set_overlay_state(self, visible: dict, opacity: dict) -> None:
        for name in OVERLAY_LABELS:
            self.overlay_checks[name].setChecked(bool(visible.get(name, False)))
            self.overlay_sliders[name].setValue(int(round(100 * opacity.get(name, 1.0))))

    def set_threshold(self, threshold: float, custom: bool = False) -> None:
        """Show the case's threshold; ``custom``: the user chose it (Reset goes back)."""
        self._threshold_timer.stop()  # a pending move belongs to the case before
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(int(round(threshold * 100)))
        self.threshold_slider.blockSignals(False)
        self.threshold_label.setText(f"Threshold {threshold:.2f}")
        self._threshold_custom = custom
        self.threshold_reset_button.setEnabled(custom and self.threshold_slider.isEnabled())

    def set_reference_available(self, available: bool) -> None:
        self.overlay_checks["reference"].setEnabled(available)
        self.overlay_sliders["reference"].setEnabled(available)
        if not available:
            self.dice.setText("no reference mask")

    def show_analysis(self, analysis: Analysis | None, from_cache: bool = False) -> None:
        has = analysis is not None
        self.threshold_slider.setEnabled(has)
        self.threshold_reset_button.setEnabled(has and self._threshold_custom)
        self.summary.show_analysis(analysis)
        if not has:
            for label in (self.area, self.skin, self.region, self.model,
                          self.timings, self.settings):
                label.setText("–")
            return
        self.skin.setText(skin_tone_text(analysis.skin_tone))
        if analysis.region:
            x, y, w, h = analysis.region
            self.region.setText(f"region x {x}, y {y}, {w} × {h} px")
        else:
            h, w = analysis.consensus_probability.shape
            self.region.setText(f"whole photo, {w} × {h} px")
        self.model.setText(f"{analysis.model_id} on {analysis.device}")
        t = dict(analysis.timings)
        total = t.pop("total", None)
        parts = [f"{k} {_seconds(v)}" for k, v in t.items()]
        head = f"total {_seconds(total)}" if total is not None else ""
        self.timings.setText((head + (" (" + ", ".join(parts) + ")" if parts else "")
                              + ("; reopened from cache" if from_cache else "")).strip())
        s = analysis.settings
        self.settings.setText(", ".join(f"{k} {v}" for k, v in s.items()
                                        if k in ("samples", "timestep_range", "crf", "method")))

    def show_mask_stats(self, lesion_fraction: float | None, dice: float | None) -> None:
        self.area.setText("–" if lesion_fraction is None else f"{lesion_fraction:.1%} of the photo")
        if dice is not None:
            self.dice.setText(f"{dice:.3f}")

    def _on_threshold(self, value: int) -> None:
        self.threshold_label.setText(f"Threshold {value / 100:.2f}")
        # A 50 MP mask takes ~0.2 s to re-threshold: follow the slider once it pauses
        self._threshold_timer.start()

    def _emit_threshold(self) -> None:
        self.threshold_changed.emit(self.threshold_slider.value() / 100.0)
