"""The window's review modules take the store's enums directly, yet opening the app does not
import SQLAlchemy on the GUI thread (the store thread does, when it opens the store)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_window_imports_the_review_states_without_sqlalchemy():
    code = ("import sys; import lesionviewer.app.main_window; "
            "print('lesionviewer.store.states' in sys.modules, 'sqlalchemy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.stdout.split() == ["True", "False"]
