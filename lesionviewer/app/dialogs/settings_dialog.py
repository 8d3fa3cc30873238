"""The Settings dialog: analysis settings (samples, timesteps, CRF, method, device) and colours.

Edits a copy of :class:`AppSettings`; the window saves it and re-analyses when asked.
Empty analysis fields mean "use the model's default" and say what that default is.
"""

from __future__ import annotations

import copy

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QDialog, QDialogButtonBox,
                               QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QVBoxLayout)

from lesionviewer.app.preferences import AppSettings
from lesionviewer.app.review.store_settings import StoreSettingsBox
from lesionviewer.engine.analysis import AnalysisSettings, Method

DEVICES = ["auto", "cpu", "cuda", "mps"]
COLORMAPS = ["viridis", "inferno", "magma", "plasma", "cividis", "CET-L17"]
COLOUR_FIELDS = {
    "mask_colour": "Mask fill", "contour_colour": "Mask outline",
    "sample_colour": "Sample outlines", "reference_colour": "Reference mask",
    "region_colour": "Region box",
}


class _OptionalSpin(QSpinBox):
    """A spin box whose lowest value reads "model default" (stored as None)."""

    def __init__(self, lo: int, hi: int, default: int | None):
        super().__init__()
        self.setRange(lo - 1, hi)
        self.setSpecialValueText("model default" + (f" ({default})" if default is not None else ""))

    def set_optional(self, value: int | None) -> None:
        self.setValue(self.minimum() if value is None else value)

    def optional(self) -> int | None:
        return None if self.value() == self.minimum() else self.value()


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, model_defaults: AnalysisSettings | None,
                 parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = copy.deepcopy(settings)
        d = model_defaults or AnalysisSettings()
        trange = d.timestep_range or (None, None)
        self.samples = _OptionalSpin(1, 64, d.samples)
        self.samples.set_optional(settings.samples)
        self.t_first = _OptionalSpin(0, 999, trange[0])
        self.t_first.set_optional(settings.timestep_first)
        self.t_last = _OptionalSpin(0, 999, trange[1])
        self.t_last.set_optional(settings.timestep_last)
        self.crf = QComboBox()
        self.crf.addItems([f"model default ({'on' if d.crf else 'off'})" if d.crf is not None
                           else "model default", "on", "off"])
        self.crf.setCurrentIndex({None: 0, True: 1, False: 2}[settings.crf])
        self.method = QComboBox()
        self.method.addItem(f"model default ({d.method.value})" if d.method else "model default",
                            None)
        for m in Method:
            self.method.addItem(m.value, m.value)
        self.method.setCurrentIndex(max(0, self.method.findData(settings.method)))
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device)
        self.background = QCheckBox("Analyse the rest of the folder in the background")
        self.background.setChecked(settings.analyse_folder_in_background)
        analysis = QGroupBox("Analysis")
        form = QFormLayout(analysis)
        form.addRow("Samples (timesteps)", self.samples)
        form.addRow("First timestep", self.t_first)
        form.addRow("Last timestep", self.t_last)
        form.addRow("DenseCRF refinement", self.crf)
        form.addRow("Method", self.method)
        form.addRow("Device", self.device)
        form.addRow("", self.background)
        note = QLabel("Changing these re-analyses the case on screen; results for earlier "
                      "settings stay in the cache.")
        note.setWordWrap(True)
        note.setStyleSheet("color: gray;")
        form.addRow(note)

        colours = QGroupBox("Overlay colours")
        cform = QFormLayout(colours)
        self._colour_buttons: dict[str, QPushButton] = {}
        for field, label in COLOUR_FIELDS.items():
            button = QPushButton()
            button.clicked.connect(lambda _=False, f=field: self._pick(f))
            self._colour_buttons[field] = button
            self._show_colour(field)
            cform.addRow(label, button)
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.colormap.setCurrentText(settings.variance_colormap)
        cform.addRow("Variance colour map", self.colormap)

        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel
                                   | QDialogButtonBox.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.RestoreDefaults).clicked.connect(self._restore)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(analysis)
        row.addWidget(colours)
        layout.addLayout(row)
        self.store_box = StoreSettingsBox(settings)
        layout.addWidget(self.store_box)
        layout.addWidget(buttons)

    def _show_colour(self, field: str) -> None:
        colour = getattr(self._settings, field)
        self._colour_buttons[field].setText(colour)
        self._colour_buttons[field].setStyleSheet(f"background:{colour}; color:black;")

    def _pick(self, field: str) -> None:
        colour = QColorDialog.getColor(QColor(getattr(self._settings, field)), self)
        if colour.isValid():
            setattr(self._settings, field, colour.name())
            self._show_colour(field)

    def _restore(self) -> None:
        defaults = AppSettings()
        for w, v in ((self.samples, None), (self.t_first, None), (self.t_last, None)):
            w.set_optional(v)
        self.crf.setCurrentIndex(0)
        self.method.setCurrentIndex(0)
        self.device.setCurrentText(defaults.device)
        self.colormap.setCurrentText(defaults.variance_colormap)
        for field in COLOUR_FIELDS:
            setattr(self._settings, field, getattr(defaults, field))
            self._show_colour(field)

    def result_settings(self) -> AppSettings:
        s = copy.deepcopy(self._settings)
        s.samples = self.samples.optional()
        s.timestep_first, s.timestep_last = self.t_first.optional(), self.t_last.optional()
        if (s.timestep_first is None) != (s.timestep_last is None):
            s.timestep_first = s.timestep_last = None  # a range needs both ends
        elif s.timestep_first is not None and s.timestep_first > s.timestep_last:
            s.timestep_first, s.timestep_last = s.timestep_last, s.timestep_first
        s.crf = {0: None, 1: True, 2: False}[self.crf.currentIndex()]
        s.method = self.method.currentData()
        s.device = self.device.currentText()
        s.analyse_folder_in_background = self.background.isChecked()
        s.variance_colormap = self.colormap.currentText()
        self.store_box.apply_to(s)
        return s
