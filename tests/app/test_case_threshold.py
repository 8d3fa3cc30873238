"""The consensus threshold belongs to the case: chosen on one case, it stays with that case
(and its sidecar), the next case shows the model's, and Reset goes back to the model's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from lesionviewer.io.sidecar_record import CaseSidecar, decode, encode

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def lively_model_dir(tiny_model_dir, tmp_path_factory, enliven):
    """The tiny model with maps that vary, so the consensus has levels between 0 and 1 and
    each threshold gives its own mask (the plain tiny model calls everything lesion)."""
    from lesionviewer.engine.checkpoint import save_model
    from lesionviewer.engine.model import load_model

    model = load_model(tiny_model_dir)
    enliven(model)
    folder = tmp_path_factory.mktemp("models") / "tiny-lively"
    save_model(folder, model.config, model.state_dict())
    return folder


def _press(key):
    QTest.keyClick(QApplication.focusWidget(), key)


def _slider_to(window, cur, qtbot, value: int):
    window.side_panel.threshold_slider.setValue(value)
    qtbot.waitUntil(lambda: cur.case.threshold == pytest.approx(value / 100), timeout=3_000)
    np.testing.assert_array_equal(cur.editor.mask,
                                  cur.analysis.consensus_probability >= value / 100)


def _on_screen(window, name, result_of, qtbot):
    qtbot.waitUntil(lambda: window.session.current is not None
                    and window.session.current.case.name == name, timeout=10_000)
    return result_of(window)


def test_a_threshold_chosen_on_one_case_does_not_carry_to_the_next(
        make_window, lively_model_dir, case_folder, result_of, app_home, qtbot):
    (app_home / "config").mkdir(parents=True, exist_ok=True)  # an old global threshold
    (app_home / "config" / "settings.json").write_text(json.dumps({"threshold": 0.83}))
    window = make_window(model_dir=lively_model_dir, background=False)
    panel = window.side_panel
    default = window.session.default_threshold()
    window.open_paths([case_folder])
    first = _on_screen(window, "ISIC_0000068.jpg", result_of, qtbot)
    assert panel.threshold_slider.value() == round(default * 100)  # not the old 0.83
    assert not panel.threshold_reset_button.isEnabled()

    levels = np.unique(first.analysis.consensus_probability)
    assert ((levels > default) & (levels < 0.83)).any()  # 0.83 and the default differ here
    _slider_to(window, first, qtbot, 83)
    assert first.case.threshold == pytest.approx(0.83)
    assert panel.threshold_reset_button.isEnabled()

    _press(Qt.Key_PageDown)
    second = _on_screen(window, "ISIC_0024311.jpg", result_of, qtbot)
    assert second.case.threshold is None
    assert panel.threshold_slider.value() == round(default * 100)
    assert panel.threshold_label.text() == f"Threshold {default:.2f}"
    probability = second.analysis.consensus_probability
    np.testing.assert_array_equal(second.editor.mask, probability >= default)
    assert not panel.threshold_reset_button.isEnabled()

    _press(Qt.Key_PageUp)
    again = _on_screen(window, "ISIC_0000068.jpg", result_of, qtbot)
    assert panel.threshold_slider.value() == 83
    np.testing.assert_array_equal(again.editor.mask,
                                  again.analysis.consensus_probability >= 0.83)

    panel.threshold_reset_button.click()
    assert again.case.threshold is None
    assert panel.threshold_slider.value() == round(default * 100)
    assert not panel.threshold_reset_button.isEnabled()
    np.testing.assert_array_equal(again.editor.mask,
                                  again.analysis.consensus_probability >= default)


def test_a_case_threshold_is_saved_with_the_case_and_restored(
        make_window, lively_model_dir, case_folder, result_of, qtbot):
    window = make_window(model_dir=lively_model_dir, background=False)
    window.open_paths([case_folder])
    cur = _on_screen(window, "ISIC_0000068.jpg", result_of, qtbot)
    _slider_to(window, cur, qtbot, 70)
    qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=5_000)
    window.close()
    record = json.loads((case_folder / "ISIC_0000068.jpg.lesionviewer.json").read_text())
    assert record["threshold"] == pytest.approx(0.70)

    again = make_window(model_dir=lively_model_dir, background=False)
    again.open_paths([case_folder])
    cur = _on_screen(again, "ISIC_0000068.jpg", result_of, qtbot)
    assert cur.case.threshold == pytest.approx(0.70)
    assert again.side_panel.threshold_slider.value() == 70
    np.testing.assert_array_equal(cur.editor.mask, cur.analysis.consensus_probability >= 0.70)


@pytest.mark.parametrize(("saved", "read"), [(0.7, 0.7), (None, None), ("high", None),
                                             (1.5, None), (float("nan"), None)])
def test_the_sidecar_keeps_a_sane_threshold_and_never_drops_the_mask_for_a_bad_one(
        tmp_path, saved, read):
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    path = tmp_path / "a.jpg.lesionviewer.json"
    record = json.loads(encode(CaseSidecar("a.jpg", "0" * 64, edited_mask=mask, threshold=0.5)))
    record["threshold"] = saved
    path.write_text(json.dumps(record))
    back = decode(path, path.read_bytes())
    assert back.threshold == read
    np.testing.assert_array_equal(back.edited_mask, mask)
