"""The start-up guard against PySide6 builds that lose a reference to None per Qt call."""

from __future__ import annotations

import ctypes
import sys

import pytest

from lesionviewer.app import qt_check


def test_the_installed_pyside6_passes_the_check():
    import PySide6

    assert qt_check.none_refcount_drop() == 0, PySide6.__version__
    assert qt_check.broken_pyside_message() is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")
def test_a_build_that_drops_a_none_reference_per_call_is_caught(monkeypatch):
    """A stand-in for PySide6 6.12.0's QPainterPath: lineTo loses one reference to None."""
    import PySide6.QtGui

    lost = []

    class LeakyPath:
        def moveTo(self, *_):
            pass

        def lineTo(self, *_):
            ctypes.pythonapi.Py_DecRef(ctypes.py_object(None))
            lost.append(1)

    monkeypatch.setattr(PySide6.QtGui, "QPainterPath", LeakyPath)
    try:
        drop = qt_check.none_refcount_drop()
        message = qt_check.broken_pyside_message()
    finally:
        for _ in lost:  # give None its references back
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    assert drop == qt_check.CALLS
    assert message is not None and "\n" not in message
    assert "known to crash lesionviewer" in message and "PySide6-Essentials>=6.10,<6.12" in message


def test_main_exits_with_the_message_before_opening_a_window(monkeypatch):
    import lesionviewer.app.main_window as main_window
    from lesionviewer.app import main

    monkeypatch.setattr(qt_check, "none_refcount_drop", lambda calls=qt_check.CALLS: calls)

    def no_window(*args, **kwargs):
        raise AssertionError("the window opened although the PySide6 build is broken")

    monkeypatch.setattr(main_window, "MainWindow", no_window)
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert "known to crash lesionviewer" in str(exit_info.value.code)
