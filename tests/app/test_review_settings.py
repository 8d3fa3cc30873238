"""Which case store and which user: ``--db`` on ``lesionviewer gui``, the OS login by default,
the settings dialog's Case store group (a password goes to the keyring, never into the
settings file), and a changed URL or user name applying at once."""

from __future__ import annotations

import argparse
import getpass

import keyring
import pytest
from keyring.backend import KeyringBackend

pytestmark = pytest.mark.gui


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.passwords = {}

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def delete_password(self, service, username):
        self.passwords.pop((service, username), None)


@pytest.fixture
def memory_keyring(monkeypatch):
    monkeypatch.delenv("LESIONVIEWER_DB", raising=False)
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


def test_db_option_and_the_os_login(qtbot, app_home, tmp_path, memory_keyring):
    from lesionviewer.app import launch
    from lesionviewer.app.dirs import app_dirs
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings

    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    url = f"sqlite:///{tmp_path / 'team.sqlite'}"
    assert parser.parse_args(["--db", url, "a.jpg"]).db == url

    dirs = app_dirs().ensure()
    window = MainWindow(load_settings(dirs.config), dirs, model_dir=None, device="cpu", db_url=url)
    window.ask_quit_anyway = lambda errors: True
    qtbot.addWidget(window)
    window.show()
    review = window.review
    qtbot.waitUntil(lambda: review.service.identity is not None, timeout=20_000)
    assert review.service.identity.url == url and (tmp_path / "team.sqlite").exists()
    assert review.service.identity.user == getpass.getuser()  # nobody chose another name
    assert getpass.getuser() in review.user_label.text()
    assert not (app_home / "data" / "cases.sqlite").exists()  # --db wins over the default
    window.close()


def test_settings_keep_the_password_in_the_keyring_and_apply_at_once(
        make_window, qtbot, app_home, memory_keyring):
    from lesionviewer.app.dialogs.settings_dialog import SettingsDialog
    from lesionviewer.store.url import KEYRING_SERVICE

    window = make_window(model_dir=None, wait_model=False)
    review = window.review
    qtbot.waitUntil(lambda: review.service.identity is not None, timeout=20_000)
    assert review.service.identity.url.endswith("data/cases.sqlite")  # the one-desk default

    dialog = SettingsDialog(window.settings, None, window)
    box = dialog.store_box
    box.url.setText("postgresql://bob:s3cret@db.example.org:5432/lv?sslmode=require")
    assert not box.user.isEnabled()  # a team store records the database login
    assert "database login" in box.login_note.text() and not box.login_note.isHidden()
    box.user.setText("bob")
    chosen = dialog.result_settings()
    assert chosen.db_url == "postgresql://bob@db.example.org:5432/lv?sslmode=require"
    assert chosen.user_name == "bob"
    assert memory_keyring.passwords == {(KEYRING_SERVICE, "bob@db.example.org:5432/lv"): "s3cret"}
    assert box.password.text() == ""

    box.url.setText("")  # back to this desk's store, as "bob": applies at once
    assert box.user.isEnabled() and box.login_note.isHidden()
    box.password.setText("typed-but-unused")
    chosen = dialog.result_settings()
    window.apply_settings(chosen)
    qtbot.waitUntil(lambda: review.service.identity.user == "bob", timeout=20_000)
    assert "bob (" in review.user_label.text()
    saved = (app_home / "config" / "settings.json").read_text()
    assert '"user_name": "bob"' in saved
    assert "s3cret" not in saved and "typed-but-unused" not in saved
