"""The result panel never shows a skin-tone number the engine could not measure."""

from __future__ import annotations

import dataclasses

import pytest

from lesionviewer.app.views.side_panel import skin_tone_text
from lesionviewer.engine.analysis import SkinTone

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(("tone", "text"), [
    (SkinTone(47.04, "light", 3000), "ITA 47.0° (light)"),
    (SkinTone(float("nan"), "unknown", 12), "not measurable (too little skin visible)"),
    (SkinTone(float("nan"), "unknown", 30000), "not measurable (colour cast"),
])
def test_skin_tone_wording(tone, text):
    assert skin_tone_text(tone).startswith(text)


def test_the_panel_says_not_measurable_instead_of_a_number(make_window, case_folder,
                                                           result_of):
    window = make_window(background=False)
    window.open_paths([case_folder])
    cur = result_of(window)
    panel = window.side_panel
    cast = dataclasses.replace(cur.analysis,
                               skin_tone=SkinTone(float("nan"), "unknown", 30000))
    panel.show_analysis(cast)
    assert panel.skin.text().startswith("not measurable")
    assert "°" not in panel.skin.text() and "90" not in panel.skin.text()
