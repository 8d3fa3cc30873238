"""The result panel reads as a clinician should read it: the malignancy estimate with its range
(never a bare bold percentage), withheld with the reason when it must not be read, a visible
out-of-distribution warning, and GED named as the mask's uncertainty with a fitted level."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from lesionviewer.app.views.result_summary import (DISCLAIMER, OOD_WARNING, ResultSummary,
                                             bind_message_bar, malignancy_reading)
from lesionviewer.engine.analysis import Analysis, SkinTone

pytestmark = pytest.mark.gui

REASON = "mask too uncertain to read a malignancy estimate (GED above the fitted cut-off)"


def _analysis(**fields) -> Analysis:
    h, w = 24, 32
    probability = np.zeros((h, w), np.float32)
    probability[6:18, 8:24] = 1.0
    base = Analysis(
        consensus_probability=probability, consensus_mask=probability >= 0.5,
        variance=np.zeros((h, w), np.float32), entropy=np.zeros((h, w), np.float32),
        sample_masks=np.stack([probability >= 0.5] * 4), timesteps=(60, 90, 120, 150),
        ged=0.12, malignancy_probability=0.19,
        skin_tone=SkinTone(ita_degrees=41.5, group="light", skin_pixels=500),
        model_id="test@00000000", device="cpu", settings={"samples": 4},
        timings={"total": 0.3}, malignancy_range=(0.11, 0.30), ood_score=0.4, ood=False,
        malignancy_withheld=None, ged_level="medium")
    return dataclasses.replace(base, **fields)


@pytest.fixture
def summary(qtbot):
    widget = ResultSummary()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_malignancy_is_shown_with_its_range_in_normal_weight(summary):
    summary.show_analysis(_analysis())

    assert summary.malignancy.text() == "19 % (range 11–30 %)"
    assert not summary.malignancy.font().bold()
    assert summary.malignancy.font().pointSizeF() == summary.font().pointSizeF()
    tip = summary.malignancy.toolTip()
    assert "research estimate" in tip and "not a diagnosis" in tip and "range" in tip
    assert summary.disclaimer.text() == DISCLAIMER and summary.disclaimer.isVisible()
    assert not summary.ood_warning.isVisible()


def test_a_model_without_a_range_says_so_rather_than_showing_a_bare_figure(summary):
    summary.show_analysis(_analysis(malignancy_range=None))
    assert summary.malignancy.text() == "19 % (no range from this model)"


@pytest.mark.parametrize("fields", [
    {"malignancy_withheld": REASON},
    # flagged out of distribution: withheld even if the engine gave no reason of its own
    {"ood": True, "ood_score": 7.5, "malignancy_withheld": None},
])
def test_withheld_figure_shows_the_reason_greyed_and_no_number(summary, fields):
    summary.show_analysis(_analysis(**fields))

    text = summary.malignancy.text()
    assert text.startswith("withheld: ")
    assert (REASON if fields.get("malignancy_withheld") else "unlike the dermoscopy") in text
    assert "%" not in text and "19" not in text and "11" not in text and "30" not in text
    assert "gray" in summary.malignancy.styleSheet()
    assert summary.malignancy.accessibleDescription() == text  # not conveyed by colour alone


def test_out_of_distribution_photo_gets_a_visible_accessible_warning(summary):
    summary.show_analysis(_analysis(ood=True, ood_score=7.5,
                                    malignancy_withheld="photo unlike the training images"))

    warning = summary.ood_warning
    assert warning.isVisible()
    assert OOD_WARNING in warning.text() and warning.text().startswith("⚠ Warning:")
    assert warning.accessibleName() == "Out-of-distribution warning"
    assert "7.50" in warning.toolTip()
    summary.show_analysis(_analysis())  # the next case is ordinary: the warning goes
    assert not warning.isVisible()


def test_ood_warning_is_mirrored_in_the_message_bar_only_while_that_case_is_shown(qtbot, summary):
    from lesionviewer.app.views.message_bar import MessageBar

    bar = MessageBar()
    qtbot.addWidget(bar)
    bind_message_bar(summary, bar)
    summary.show_analysis(_analysis(ood=True))
    assert bar.message() == OOD_WARNING and bar.level == "warning"
    summary.show_analysis(None)  # another case comes on screen
    assert bar.message() == ""
    bar.show_message("Export finished.", "info")
    summary.show_analysis(_analysis())
    assert bar.message() == "Export finished."  # another message is left alone


def test_ged_is_named_as_the_masks_uncertainty_with_its_fitted_level(summary):
    summary.show_analysis(_analysis(ged=0.12, ged_level="medium"))

    assert summary.ged.text() == "0.120 — medium"
    form = summary.layout()
    assert form.labelForField(summary.ged).text() == "Mask uncertainty (GED)"
    tip = summary.ged.toolTip()
    assert "MASK" in tip and "not the diagnosis" in tip


def test_ged_level_falls_back_to_the_models_cutoffs_and_never_to_made_up_ones(summary):
    summary.show_analysis(_analysis(ged=0.12, ged_level=None))
    assert summary.ged.text() == "0.120"  # no fitted cut-offs known: no level at all
    summary.set_ged_cutoffs((0.05, 0.30))
    assert summary.ged.text() == "0.120 — medium"
    summary.set_ged_cutoffs((0.20, 0.40))
    assert summary.ged.text() == "0.120 — low"


def test_case_list_shows_withheld_instead_of_the_figure_and_sorts_it_last():
    from lesionviewer.app.services.case import Case
    from lesionviewer.app.views.case_list import MALIGNANCY, SORT_ROLE, CaseListModel
    from PySide6.QtCore import Qt

    model = CaseListModel()
    model.set_cases([Case(Path("a.jpg"), ged=0.1, malignancy_probability=0.9,
                          malignancy_withheld=REASON),
                     Case(Path("b.jpg"), ged=0.1, malignancy_probability=0.2)])
    withheld, shown = model.index(0, MALIGNANCY), model.index(1, MALIGNANCY)
    assert withheld.data(Qt.DisplayRole) == "withheld" and shown.data(Qt.DisplayRole) == "20%"
    assert REASON in withheld.data(Qt.ToolTipRole)
    assert withheld.data(SORT_ROLE) is None  # "highest first" never ranks a withheld figure


def test_the_panel_shows_the_real_analysis_fields(make_window, case_folder, result_of):
    window = make_window(background=False)
    window.open_paths([case_folder])
    a = result_of(window).analysis

    panel = window.side_panel
    assert panel.malignancy.text() == malignancy_reading(a).text
    assert not panel.malignancy.font().bold()
    assert panel.ged.text().startswith(f"{a.ged:.3f}")
    if a.ged_level:
        assert panel.ged.text().endswith(f"— {a.ged_level}")
    assert panel.summary.ood_warning.isVisible() == bool(a.ood)
    assert panel.malignancy.x() == panel.ged.x() == panel.area.x()  # one column of values


def test_an_ood_photo_is_withheld_in_panel_list_and_message_bar(make_window, case_folder,
                                                                result_of, qtbot, monkeypatch):
    """The engine's flag travels through the worker to every place that shows the case."""
    from lesionviewer.app.views.case_list import MALIGNANCY
    from lesionviewer.engine.pipeline import Analyzer
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QScrollArea

    flag = {"ood": True}
    analyze = Analyzer.analyze

    def flagged(self, *args, **kwargs):
        result = analyze(self, *args, **kwargs)
        if not flag["ood"]:
            return dataclasses.replace(result, ood=False, ood_score=0.1, malignancy_withheld=None)
        return dataclasses.replace(result, ood=True, ood_score=9.0, malignancy_withheld=REASON)

    monkeypatch.setattr(Analyzer, "analyze", flagged)
    window = make_window(background=False)
    window.open_paths([case_folder])
    cur = result_of(window)
    first = cur.case

    panel = window.side_panel
    assert panel.summary.ood_warning.isVisible()
    assert panel.malignancy.text() == f"withheld: {REASON}"
    qtbot.waitUntil(lambda: window.message_bar.message() == OOD_WARNING, timeout=5_000)
    model = window.session.cases
    assert model.index_of(first, MALIGNANCY).data(Qt.DisplayRole) == "withheld"
    # the warning and the reason wrap: the panel fits its dock without sideways scrolling
    scroll = window.findChild(QScrollArea, "result-scroll")
    if scroll is not None:
        qtbot.waitUntil(lambda: scroll.horizontalScrollBar().maximum() == 0, timeout=5_000)

    flag["ood"] = False  # the next photo is ordinary
    window.case_list.step(+1)
    qtbot.waitUntil(lambda: window.session.current.case is not first, timeout=5_000)
    result_of(window)
    assert not panel.summary.ood_warning.isVisible()
    assert "%" in panel.malignancy.text()
    assert window.message_bar.message() == ""


def test_the_models_fitted_ged_cutoffs_reach_the_panel(make_window, tiny_model_dir, tmp_path):
    """An analysis without a level of its own is read with the loaded model's fitted cut-offs
    (config.json, ``trust.ged_low`` / ``trust.ged_high``), never with made-up ones."""
    from lesionviewer.engine.checkpoint import load_weights, save_model

    config, state = load_weights(tiny_model_dir)
    config["trust"] = {"ged_low": 0.05, "ged_high": 0.30}
    save_model(tmp_path / "fitted", config, state)
    window = make_window(model_dir=tmp_path / "fitted")
    window.side_panel.show_analysis(_analysis(ged=0.12, ged_level=None))
    assert window.side_panel.ged.text() == "0.120 — medium"

    plain = make_window()  # the tiny model has no cut-offs: no level at all
    plain.side_panel.show_analysis(_analysis(ged=0.12, ged_level=None))
    assert plain.side_panel.ged.text() == "0.120"


def test_the_review_queue_puts_withheld_results_first_whatever_their_ged(qtbot):
    """An out-of-distribution photo can have samples that agree (low GED); the review queue
    must still show it before confident in-distribution cases."""
    from lesionviewer.app.services.case import Case
    from lesionviewer.app.views.case_list import REVIEW_QUEUE, CaseListModel, CaseListPanel

    panel = CaseListPanel(CaseListModel())
    qtbot.addWidget(panel)
    panel.model.set_cases([Case(Path("sure.jpg"), ged=0.30, malignancy_probability=0.5),
                           Case(Path("ood.jpg"), ged=0.01, malignancy_withheld=REASON),
                           Case(Path("calm.jpg"), ged=0.02, malignancy_probability=0.1),
                           Case(Path("new.jpg"))])
    panel.set_sort(REVIEW_QUEUE)
    order = [panel.proxy.index(r, 0).data() for r in range(panel.proxy.rowCount())]
    assert order == ["ood", "sure", "calm", "new"]
