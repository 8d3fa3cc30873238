"""Start-up: torch and the engine are imported on a background thread from the first line of
main(), before Qt and the window (import torch alone takes 1.4-2.3 s), and the analysis
thread runs on a thread count chosen for the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.gui

def test_main_imports_torch_on_a_background_thread_before_qt(tmp_path, tiny_model_dir):
    code = textwrap.dedent(f"""
        import json, os, signal, sys, threading, time
        events = []

        class Spy:  # records which thread first imports torch and PySide6, and what else runs
            def find_spec(self, name, path=None, target=None):
                if name in ("torch", "PySide6") and name not in [e[0] for e in events]:
                    events.append((name, threading.current_thread().name,
                                   sorted(t.name for t in threading.enumerate())))
                return None

        sys.meta_path.insert(0, Spy())

        def stop_later():
            while "torch" not in [e[0] for e in events] or "PySide6" not in [e[0] for e in events]:
                time.sleep(0.1)
            from lesionviewer.app import wait_for_engine_import
            wait_for_engine_import(120)
            while signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                time.sleep(0.1)  # until main() has its window and Ctrl+C handler
            time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGINT)  # main() closes the window on Ctrl+C

        threading.Thread(target=stop_later, daemon=True).start()
        from lesionviewer.app import main
        code = main([], model_dir={str(tiny_model_dir)!r}, device="cpu")
        print(json.dumps({{"events": events, "code": code}}))
        """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LESIONVIEWER_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    events = {name: (thread, running) for name, thread, running in result["events"]}
    assert events["torch"][0] == "engine-import", events  # not the analysis thread, later
    assert events["PySide6"][0] == "MainThread"
    assert "engine-import" in events["PySide6"][1], events  # already under way before Qt


def test_the_analysis_leaves_one_core_to_the_gui(monkeypatch):
    from lesionviewer.app.services import worker

    for cores, threads in ((1, 1), (2, 1), (4, 3), (64, worker.MAX_TORCH_THREADS)):
        monkeypatch.setattr(worker, "_cores", lambda cores=cores: cores)
        assert worker.analysis_threads() == threads
    monkeypatch.setenv("LESIONVIEWER_TORCH_THREADS", "2")
    assert worker.analysis_threads() == 2
