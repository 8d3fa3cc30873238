"""The settings dialog's "Case store" group: the database URL, its password, the user name.

The password never reaches the settings file: it goes to the OS keyring through
:func:`lesionviewer.store.url.store_password` (a password typed into the URL itself is taken
out of it and kept the same way). Without a keyring the group says to use a .pgpass file.
"""

from __future__ import annotations

import getpass

from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QLineEdit

from lesionviewer.app.preferences import AppSettings



def os_login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a bare container
        return "unknown"


class StoreSettingsBox(QGroupBox):
    def __init__(self, settings: AppSettings, parent=None):
        super().__init__("Case store (team review)", parent)
        from lesionviewer.store.url import default_url

        form = QFormLayout(self)
        self.url = QLineEdit(settings.db_url)
        self.url.setPlaceholderText(default_url())
        self.url.setToolTip("Empty: the SQLite file on this desk. A team store: "
                            "postgresql://user@host:5432/lesionviewer?sslmode=verify-full "
                            "(--db and LESIONVIEWER_DB override this)")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.Password)
        self.password.setPlaceholderText("kept in the OS keyring, never in the settings file")
        self.user = QLineEdit(settings.user_name)
        self.user.setPlaceholderText(os_login())
        self.user.setToolTip("Recorded on every mask, review move and sign-off")
        form.addRow("Database URL", self.url)
        form.addRow("Password", self.password)
        form.addRow("User name", self.user)
        self.login_note = QLabel("A team store records your database login (the user in "
                                 "the URL) on every write; the user name is for this desk.")
        self.login_note.setWordWrap(True)
        self.login_note.setStyleSheet("color: gray;")
        form.addRow(self.login_note)
        self.note = QLabel("A new URL or user name applies at once (--db and "
                           "LESIONVIEWER_DB still win over the URL).")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: gray;")
        form.addRow(self.note)
        self.keyring_failed = False
        self.url.textChanged.connect(self._show_user_field)
        self._show_user_field()

    def _show_user_field(self) -> None:
        """On a team store (the URL here, or $LESIONVIEWER_DB) the user name field is
        disabled: the store records the database login (``session_user``) instead."""
        from lesionviewer.store.url import is_postgresql, resolve_url

        try:
            team = is_postgresql(resolve_url(None, self.url.text()))
        except ValueError:  # half-typed: the store says what is wrong with it
            team = False
        self.user.setEnabled(not team)
        self.login_note.setVisible(team)

    def apply_to(self, settings: AppSettings) -> None:
        """Copy the fields into ``settings``; a password goes to the keyring, never there."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        from lesionviewer.store.url import store_password

        url, password = self.url.text().strip(), self.password.text()
        if url:
            try:
                parsed = make_url(url)
            except ArgumentError:  # kept as typed: the store says what is wrong with it
                parsed = None
            if parsed is not None and parsed.password is not None:
                password = password or parsed.password
                # URL.set(password=None) would keep it: None means "unchanged" there
                url = parsed._replace(password=None).render_as_string(hide_password=False)
            if password and parsed is not None and parsed.get_backend_name() != "sqlite":
                self.keyring_failed = not store_password(url, password)
        settings.db_url = url
        settings.user_name = self.user.text().strip()
        self.password.clear()
