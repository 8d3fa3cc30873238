"""Where the app keeps its own files: settings, analysis cache, autosaved edits, logs.

Everything goes through :func:`app_dirs`, so tests (and portable installs) can move the lot by
setting ``LESIONVIEWER_HOME``; nothing is resolved at import time.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import platformdirs

APP_NAME = "lesionviewer"
HOME_ENV = "LESIONVIEWER_HOME"


@dataclasses.dataclass(frozen=True)
class AppDirs:
    config: Path  # settings.json, recent.json
    cache: Path  # analysis cache (safe to delete)
    data: Path  # autosaved edits for images whose folder is read-only
    log: Path  # rotating log file

    def ensure(self) -> "AppDirs":
        for p in (self.config, self.cache, self.data, self.log):
            p.mkdir(parents=True, exist_ok=True)
        return self


def app_dirs() -> AppDirs:
    """The per-user folders (platformdirs), or sub-folders of $LESIONVIEWER_HOME when set."""
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home)
        return AppDirs(root / "config", root / "cache", root / "data", root / "log")
    return AppDirs(
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )
