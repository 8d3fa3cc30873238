"""Rotating log file in the user's log folder, and a hook so no exception goes unseen."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Callable

LOG_NAME = "lesionviewer.log"
_handler: logging.Handler | None = None


def setup_logging(log_dir: Path, level: int = logging.INFO) -> Path:
    """Send the ``lesionviewer`` loggers to ``log_dir/lesionviewer.log`` (1 MB x 5 files).

    Safe to call again (tests open several windows): the previous file handler is replaced.
    """
    global _handler
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_NAME
    root = logging.getLogger("lesionviewer")
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
    _handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=1_000_000, backupCount=5, encoding="utf-8"
    )
    _handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    )
    root.addHandler(_handler)
    root.setLevel(level)
    return path


def install_excepthook(show: Callable[[str], None]) -> None:
    """Log uncaught exceptions (Qt slots included) and show a one-line message to the user."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):  # Ctrl+C: main() closes the window
            logging.getLogger("lesionviewer").info("interrupted from the terminal")
            return
        logging.getLogger("lesionviewer").error("uncaught exception", exc_info=(exc_type, exc, tb))
        try:
            show(f"Unexpected error: {exc_type.__name__}: {exc}. Details are in the log file.")
        except Exception:  # the window may be gone; the log has it
            pass
        if previous not in (sys.__excepthook__, hook):
            previous(exc_type, exc, tb)

    sys.excepthook = hook
