"""The window carries the app icon, and Help ▸ About names the version, the loaded model and
the licences."""

from __future__ import annotations

import pytest

from lesionviewer import __version__

pytestmark = pytest.mark.gui


def test_window_icon_and_about_dialog(make_window, qtbot, monkeypatch):
    from lesionviewer.app.dialogs import about

    window = make_window()
    assert not window.windowIcon().isNull()
    assert 256 in [s.width() for s in window.windowIcon().availableSizes()]
    shown = []
    monkeypatch.setattr(about.AboutDialog, "exec", lambda self: shown.append(self.text.text()) or 0)
    window.actions.about.trigger()
    assert len(shown) == 1
    text = shown[0]
    assert f"lesionviewer {__version__}" in text
    info = window._model_info
    assert info is not None and info.name in text and info.model_id in text
    assert "Apache-2.0" in text and "CC BY-NC 4.0" in text
    assert "not a diagnosis" in text


def test_about_without_a_model_says_none_is_loaded(tmp_path):
    from lesionviewer.app.dialogs.about import about_html
    from lesionviewer.app.dirs import AppDirs

    dirs = AppDirs(tmp_path / "c", tmp_path / "k", tmp_path / "d", tmp_path / "l")
    assert "<b>Model:</b> none loaded" in about_html(None, None, None, dirs)
