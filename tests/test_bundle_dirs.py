"""The bundle's install folder stays read-only: settings, the analysis cache, autosaved edits and
logs go to the per-user platformdirs folders (docs/installer.md lists them), never next to the
program, whether or not it runs frozen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lesionviewer.app.dirs import app_dirs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG folders are Linux's")
def test_without_lesionviewer_home_the_folders_are_the_users_xdg_ones(tmp_path, monkeypatch):
    home = tmp_path / "user"
    internal = tmp_path / "opt" / "lesionviewer" / "_internal"
    internal.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("LESIONVIEWER_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as in the PyInstaller bundle
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    dirs = app_dirs()
    assert dirs.config == home / ".config" / "lesionviewer"
    assert dirs.cache == home / ".cache" / "lesionviewer"
    assert dirs.data == home / ".local" / "share" / "lesionviewer"
    assert dirs.log == home / ".local" / "state" / "lesionviewer" / "log"
    for folder in (dirs.config, dirs.cache, dirs.data, dirs.log):
        assert not folder.is_relative_to(internal.parent)


def test_lesionviewer_home_moves_all_four_under_one_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LESIONVIEWER_HOME", str(tmp_path / "roaming"))
    dirs = app_dirs()
    assert {dirs.config.parent, dirs.cache.parent, dirs.data.parent, dirs.log.parent} == {tmp_path / "roaming"}
