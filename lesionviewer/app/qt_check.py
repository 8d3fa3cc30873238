"""A start-up guard against PySide6 builds that drop a reference to ``None`` per void call.

PySide6 6.12.0 on Python 3.11 lowers ``None``'s reference count by one on every call of a Qt
method that returns nothing; after some thousands of calls the interpreter aborts with
"Fatal Python error: none_dealloc". Python 3.12+ makes ``None`` immortal, which hides the
bug there (the count does not move). The check costs a few hundred microseconds.
"""

from __future__ import annotations

import sys

CALLS = 200
SUPPORTED = "PySide6-Essentials>=6.10,<6.12"  # as pinned in pyproject.toml


def none_refcount_drop(calls: int = CALLS) -> int:
    """How far ``sys.getrefcount(None)`` fell over ``calls`` void Qt calls (0 on a good build)."""
    from PySide6.QtGui import QPainterPath

    path = QPainterPath()
    path.moveTo(0.0, 0.0)
    before = sys.getrefcount(None)
    for i in range(calls):
        path.lineTo(float(i), 1.0)
    after = sys.getrefcount(None)
    return max(0, before - after)


def broken_pyside_message() -> str | None:
    """One line saying this PySide6 build will crash lesionviewer and what to install, or None."""
    drop = none_refcount_drop()
    if drop < CALLS // 2:  # a few references may come and go elsewhere; the bug loses one per call
        return None
    import PySide6

    return (f"This PySide6 build ({PySide6.__version__}) is known to crash lesionviewer (it loses "
            f"a reference to None on every Qt call: {drop} in {CALLS}); install a working one: "
            f"pip install \"{SUPPORTED}\"")


def exit_if_broken_pyside() -> None:
    """Exit with the one-line message when the installed PySide6 has the None-refcount bug."""
    message = broken_pyside_message()
    if message is not None:
        sys.exit(message)
