"""The result in words a clinician can trust: the malignancy estimate with its range (or why it
is withheld), the out-of-distribution warning, and the mask's uncertainty (GED) with its level.

The wording lives in plain functions (:func:`malignancy_reading`, :func:`ged_text`) so the case
list and the tests read the same sentences the panel shows; :class:`ResultSummary` is the
widget the side panel embeds.
"""

from __future__ import annotations

import dataclasses
import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from lesionviewer.engine.analysis import Analysis

DISCLAIMER = "Decision support, not a diagnosis."
OOD_WARNING = ("This photo is unlike the dermoscopy images the model was trained on; "
               "results may be unreliable.")
# The engine names its own reason; this one stands in when only the flag is known.
OOD_REASON = "photo unlike the dermoscopy images the model was trained on"
WITHHELD = "withheld"

MALIGNANCY_TIP = (
    "A research estimate of the probability that this lesion is malignant, from the model's "
    "malignancy head, calibrated on held-out dermoscopy photos (the calibration half of the "
    "validation set). It is not a diagnosis and does not replace a clinician's examination.\n"
    "The range is where the estimate may land when the same lesion is seen another way (a "
    "mirrored photo, another outline of the lesion); the model card says how it was fitted and "
    "how often it held on held-out photos. Read the figure as no more precise than that.\n"
    "It is withheld when the photo is unlike the training images or the mask is too uncertain "
    "for the figure to be about the lesion.")
GED_TIP = (
    "Generalized Energy Distance among the model's sample masks, 0..1 (0: the samples coincide; "
    "1: they do not overlap at all). It measures how unsure the model is about the lesion's "
    "border, i.e. the MASK, not the diagnosis.\n"
    "Low / medium / high use cut-offs fitted on validation photos and stored with the model; "
    "without them no level is given.")
_OOD_STYLE = ("background:#4d3b12; color:#fff4d6; border:1px solid #b8860b; border-radius:3px; "
              "padding:4px; font-weight:600;")
_WITHHELD_STYLE = "color: gray; font-style: italic;"


def _percent(p: float) -> str:
    return f"{100.0 * p:.0f} %"


@dataclasses.dataclass(frozen=True)
class MalignancyReading:
    """What to show for the malignancy estimate: ``text`` (never a bare percentage), and
    ``withheld`` = the reason no figure is shown (None when the figure may be read)."""

    text: str
    withheld: str | None = None


def withheld_reason(analysis: Analysis) -> str | None:
    """Why the malignancy figure must not be read, or None. An out-of-distribution photo
    always withholds it, whatever else the engine said."""
    if analysis.malignancy_withheld:
        return analysis.malignancy_withheld
    if analysis.ood:
        return OOD_REASON
    return None


def malignancy_reading(analysis: Analysis) -> MalignancyReading:
    reason = withheld_reason(analysis)
    if reason is not None:
        return MalignancyReading(f"{WITHHELD}: {reason}", reason)
    p = analysis.malignancy_probability
    if p is None or not math.isfinite(p):
        return MalignancyReading("not available for this model")
    r = analysis.malignancy_range
    if r is None or not all(math.isfinite(v) for v in r):
        return MalignancyReading(f"{_percent(p)} (no range from this model)")
    low, high = sorted(r)
    return MalignancyReading(f"{_percent(p)} (range {100 * low:.0f}–{100 * high:.0f} %)")


def ged_level(ged: float, level: str | None,
              cutoffs: tuple[float, float] | None = None) -> str | None:
    """The analysis's own level; else the model's fitted ``cutoffs`` (medium from, high from)
    applied to ``ged``; else None (no level is better than an unfitted one)."""
    if level:
        return level
    if cutoffs is None or not math.isfinite(ged):
        return None
    medium, high = cutoffs
    return "low" if ged < medium else "medium" if ged < high else "high"


def ged_cutoffs_of(config: dict) -> tuple[float, float] | None:
    """The (low/medium, medium/high) GED cut-offs in a model config's ``trust`` section, as the
    engine reads them; None when the model has none."""
    trust = config.get("trust") or {}
    try:
        return float(trust["ged_low"]), float(trust["ged_high"])
    except (KeyError, TypeError, ValueError):
        return None


def ged_text(ged: float, level: str | None) -> str:
    if not math.isfinite(ged):
        return "unknown"
    return f"{ged:.3f} — {level}" if level else f"{ged:.3f}"


class ResultSummary(QWidget):
    """Malignancy (figure + range, or withheld + reason), disclaimer, OOD warning, GED.

    ``ood_warning_changed`` carries the warning sentence when a newly shown analysis is out of
    distribution, and "" when the one now shown (or none) is not: the window mirrors it in its
    message bar (:func:`bind_message_bar`).
    """

    ood_warning_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._shown: Analysis | None = None
        self._ged_cutoffs: tuple[float, float] | None = None
        self.form = form = QFormLayout(self)  # the side panel adds its rows below these
        form.setContentsMargins(0, 0, 0, 0)
        self.ood_warning = QLabel("⚠ Warning: " + OOD_WARNING)
        self.ood_warning.setWordWrap(True)
        self.ood_warning.setStyleSheet(_OOD_STYLE)
        self.ood_warning.setAccessibleName("Out-of-distribution warning")
        self.ood_warning.setAccessibleDescription(OOD_WARNING)
        self.ood_warning.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.ood_warning.hide()
        self.malignancy = QLabel()
        self.malignancy.setWordWrap(True)
        self.malignancy.setToolTip(MALIGNANCY_TIP)
        self.malignancy.setAccessibleName("Malignancy estimate")
        self.disclaimer = QLabel(DISCLAIMER)
        self.disclaimer.setStyleSheet("color: #b8860b;")
        self.disclaimer.setWordWrap(True)  # the panel may be narrow (a dock beside the photo)
        self.ged = QLabel()
        self.ged.setToolTip(GED_TIP)
        self.ged.setAccessibleName("Mask uncertainty (GED)")
        form.addRow(self.ood_warning)
        form.addRow("Malignancy", self.malignancy)
        form.addRow("", self.disclaimer)
        form.addRow("Mask uncertainty (GED)", self.ged)
        for label in (self.malignancy, self.ged):
            form.labelForField(label).setToolTip(label.toolTip())
        self.show_analysis(None)

    def set_ged_cutoffs(self, cutoffs: tuple[float, float] | None) -> None:
        """The model's fitted GED cut-offs, used when an analysis carries no level."""
        self._ged_cutoffs = None if cutoffs is None else (float(cutoffs[0]), float(cutoffs[1]))
        if self._shown is not None:
            self._show_ged(self._shown)

    def show_analysis(self, analysis: Analysis | None) -> None:
        changed = analysis is not self._shown
        self._shown = analysis
        if analysis is None:
            self.malignancy.setText("–")
            self.malignancy.setStyleSheet("")
            self.ged.setText("–")
            self.ood_warning.hide()
        else:
            reading = malignancy_reading(analysis)
            self.malignancy.setText(reading.text)
            self.malignancy.setStyleSheet(_WITHHELD_STYLE if reading.withheld else "")
            self.malignancy.setAccessibleDescription(reading.text)
            self.ood_warning.setVisible(bool(analysis.ood))
            if analysis.ood_score is not None and math.isfinite(analysis.ood_score):
                self.ood_warning.setToolTip(
                    f"Out-of-distribution score {analysis.ood_score:.2f}, from the diffusion "
                    "model's own denoising error and features; photos scoring above the "
                    "model's cut-off (fitted on validation dermoscopy) are flagged.")
            self._show_ged(analysis)
        if changed:
            self.ood_warning_changed.emit(OOD_WARNING if analysis is not None and analysis.ood
                                          else "")

    def _show_ged(self, analysis: Analysis) -> None:
        level = ged_level(analysis.ged, analysis.ged_level, self._ged_cutoffs)
        self.ged.setText(ged_text(analysis.ged, level))


def bind_message_bar(summary: ResultSummary, bar) -> None:
    """Show the OOD warning in ``bar`` (a MessageBar) while such a case is on screen, and take
    it away (only it, not another message) when the case on screen is not flagged."""

    def on_change(text: str) -> None:
        if text:
            bar.show_message(text, "warning")
        elif bar.message() == OOD_WARNING:
            bar.dismiss()

    summary.ood_warning_changed.connect(on_change)
