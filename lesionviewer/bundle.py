"""Where the files that ship beside the code lie: the icon, the .desktop entry, the self-test's
sample case (``resources/`` at the top of the repository).

In a PyInstaller bundle they are under ``sys._MEIPASS`` (the bundle's ``_internal`` folder);
from a checkout (``pip install -e .``) they are in the repository. Qt-free, so the self-test
and the app share it.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_ID = "lesionviewer"


def is_frozen() -> bool:
    """True inside a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False))


def resources_dir() -> Path:
    """The ``resources`` folder: the bundle's, the checkout's, or a wheel install's copy under
    ``<prefix>/share/lesionviewer`` (pyproject's data-files). Callers say so when it is missing."""
    if is_frozen():
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "resources"
    checkout = Path(__file__).resolve().parents[1] / "resources"
    installed = Path(sys.prefix) / "share" / APP_ID / "resources"
    return installed if not checkout.is_dir() and installed.is_dir() else checkout


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


def icon_path(size: int | None = None) -> Path:
    """The app icon: the SVG, or the PNG of ``size`` pixels (16, 32, 48, 64, 128, 256, 512)."""
    if size is None:
        return resource("icons", f"{APP_ID}.svg")
    return resource("icons", f"{APP_ID}-{size}.png")
