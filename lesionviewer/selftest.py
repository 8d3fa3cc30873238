"""`lesionviewer --selftest`: is this installation able to work? For IT after an install.

Checks, in order, and prints one line each with its time:

1. Qt can open the app's real window (offscreen when there is no display), and how long
   after the process started it was on screen (the Qt part lives in
   :mod:`lesionviewer.app.dialogs.selftest_window`; ``--no-window`` skips it);
2. the model is found (the one the app would use) and its files match their recorded SHA-256
   digests (:func:`lesionviewer.engine.checkpoint.load_model` refuses them otherwise);
3. the bundled sample photo is analysed and the mask agrees with its expert mask;
4. the case store opens (SQLite in a temporary folder, so its migrations run), keeps the
   sample case and its analysis, and the PostgreSQL driver loads (no connection is made);
5. nothing tried to reach the network.

Then ``OK`` and exit status 0, or ``FAILED: <reason a clinician can act on>`` and status 1.
Qt-free itself; never writes to the user's settings (the window check uses a temporary folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from lesionviewer import __version__
from lesionviewer.bundle import is_frozen, resource

SAMPLE = ("sample", "ISIC_0000068.jpg")
SAMPLE_MASK = ("sample", "ISIC_0000068_mask.png")
MIN_SAMPLE_DICE = 0.5  # the shipped model scores ~0.9 on it; a broken install scores ~0


def _print_now(text: str) -> None:
    print(text, flush=True)  # a crash later (a broken library aborts) must not lose the lines


class SelftestFailed(Exception):
    """A check failed; the message says what is wrong and what to do, in one or two sentences."""


@dataclasses.dataclass
class Report:
    lines: list[str] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    out: Callable[[str], None] = _print_now

    def say(self, text: str) -> None:
        self.lines.append(text)
        self.out(text)


def process_age() -> float | None:
    """Seconds since this process started (Linux: from /proc, so it includes the bundle's
    bootloader and Python's start-up); None where that cannot be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22, starttime, in clock ticks after boot
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class NetworkWatch:
    """Records every attempt this process makes to resolve a host name or connect an IP socket
    (Python audit events), so the self-test can show the app stays off the network."""

    active = False
    attempts: list[str] = []
    _installed = False

    @classmethod
    def start(cls) -> None:
        cls.attempts = []
        cls.active = True
        if not cls._installed:
            sys.addaudithook(cls._hook)  # cannot be removed; it records only while active
            cls._installed = True

    @classmethod
    def stop(cls) -> list[str]:
        cls.active = False
        return list(cls.attempts)

    @classmethod
    def _hook(cls, event: str, args: tuple) -> None:
        if not cls.active:
            return
        if event == "socket.getaddrinfo":
            cls.attempts.append(f"name lookup {args[0]}")
        elif event == "socket.connect":
            sock = args[0]
            if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
                cls.attempts.append(f"connect {args[1]}")


def plain_reason(error: Exception) -> str:
    """The failure as a clinician or IT would want to read it, with the details after."""
    from lesionviewer.engine.checkpoint import ModelError, NoModelInstalled

    text = str(error)
    if isinstance(error, NoModelInstalled):
        return f"no analysis model is installed, so photos cannot be analysed. {text}"
    if isinstance(error, ModelError) and ("SHA-256" in text or "digest" in text):
        return ("the analysis model's files have been changed or damaged since installation, so "
                "lesionviewer refuses to use them. Reinstall lesionviewer (or ask IT to). "
                f"Details: {text}")
    if isinstance(error, ModelError):
        return f"the analysis model cannot be used: {text} Reinstall lesionviewer (or ask IT to)."
    return text


def check_model(report: Report, model: str | None, device: str):
    from lesionviewer.engine.checkpoint import find_default_model
    from lesionviewer.engine.pipeline import Analyzer

    t0 = time.perf_counter()
    import torch  # noqa: F401  (timed on its own: it is most of a cold start)

    report.timings["import torch"] = time.perf_counter() - t0
    torch.set_num_threads(os.cpu_count() or 1)  # the window's analysis thread leaves one core to Qt
    folder = Path(model) if model else find_default_model()
    t0 = time.perf_counter()
    analyzer = Analyzer.from_dir(folder, device=device)  # checks both SHA-256 digests
    report.timings["model load"] = time.perf_counter() - t0
    imported = report.timings["import torch"]
    report.say(f"model: {analyzer.model_name} ({analyzer.model_id}) from {folder}, files match "
               f"their SHA-256 ({report.timings['model load']:.2f} s"
               + (f"; import torch {imported:.2f} s)" if imported > 0.05 else ")"))
    report.say(f"device: {analyzer.device} (torch {torch.__version__}, "
               f"CUDA {'available' if torch.cuda.is_available() else 'not available'}, "
               f"{torch.get_num_threads()} threads)")
    return analyzer


def check_sample(report: Report, analyzer):
    import numpy as np

    from lesionviewer.engine.uncertainty import iou
    from lesionviewer.io.images import ImageLoadError, load_image, load_mask

    photo, mask_path = resource(*SAMPLE), resource(*SAMPLE_MASK)
    try:
        image = load_image(photo)
        reference = load_mask(mask_path, image.rgb.shape[:2])
    except ImageLoadError as e:
        raise SelftestFailed(f"the bundled sample photo cannot be read ({e}); the installation "
                             "is incomplete: reinstall lesionviewer.") from None
    t0 = time.perf_counter()
    analysis = analyzer.analyze(image.rgb, seed=0)
    report.timings["sample analysis"] = time.perf_counter() - t0
    mask = analysis.consensus_mask
    if mask.shape != reference.shape or not np.isfinite(analysis.consensus_probability).all():
        raise SelftestFailed("the analysis of the sample photo gave an unusable result; "
                             "the installation is broken: reinstall lesionviewer.")
    overlap = iou(mask, reference)
    dice = 2 * overlap / (1 + overlap)
    report.say(f"sample: {photo.name} {image.width}x{image.height} analysed in "
               f"{report.timings['sample analysis']:.2f} s, Dice {dice:.3f} against its expert mask, "
               f"GED {analysis.ged:.3f}")
    if dice < MIN_SAMPLE_DICE:
        raise SelftestFailed(f"the sample photo's mask disagrees with the expert's (Dice {dice:.2f}, "
                             f"expected at least {MIN_SAMPLE_DICE}); the model or its libraries do "
                             "not work on this computer.")
    return analysis


def check_store(report: Report, analysis) -> None:
    """Open a throwaway SQLite case store (which runs the schema migrations from the files the
    installation ships), add the sample case with its analysis, and load the PostgreSQL
    driver a team store would use, without connecting anywhere."""
    try:
        from lesionviewer.store import CaseStore, ReviewState
    except ImportError as e:
        raise SelftestFailed(f"the case store's libraries are missing ({e}); the installation is "
                             "incomplete: reinstall lesionviewer.") from None
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="lesionviewer-selftest-store-") as folder:
            with CaseStore.open(f"sqlite:///{Path(folder) / 'cases.sqlite'}", user="selftest") as store:
                case = store.add_case(resource(*SAMPLE))
                store.record_analysis(case.id, analysis.report())
                state = store.get_case(case.id).state
        import psycopg
        from sqlalchemy.dialects import registry

        registry.load("postgresql.psycopg")
        libpq = psycopg.pq.version()
    except Exception as e:  # noqa: BLE001  (any failure here means a broken installation)
        raise SelftestFailed(f"the case store does not work ({type(e).__name__}: {e}); the "
                             "installation is incomplete: reinstall lesionviewer.") from None
    if state is not ReviewState.ANALYSED:
        raise SelftestFailed(f"the case store kept the sample case as '{state.value}', not "
                             "'analysed'; the installation is broken: reinstall lesionviewer.")
    report.timings["case store"] = time.perf_counter() - t0
    report.say(f"case store: SQLite opened and migrated, sample case stored as '{state.value}' "
               f"({report.timings['case store']:.2f} s); PostgreSQL driver psycopg "
               f"{psycopg.__version__} ({psycopg.pq.__impl__}, libpq {libpq // 10000}.{libpq % 100}) loads")


def check_window(report: Report, model: str | None) -> None:
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if sys.platform.startswith("linux") and headless and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a server or an SSH session: no screen
    window_check = importlib.import_module("lesionviewer.app.dialogs.selftest_window")
    with tempfile.TemporaryDirectory(prefix="lesionviewer-selftest-") as home:
        result = window_check.open_window(Path(home), model)
    report.timings["window"] = result.seconds
    since = "" if result.since_process_start is None else \
        f", {result.since_process_start:.2f} s after the process started"
    report.timings["process start to window"] = result.since_process_start or float("nan")
    report.say(f"window: Qt {result.qt_version} on '{result.platform}' showed the main window "
               f"{result.width}x{result.height} in {result.seconds:.2f} s{since}")


def run_selftest(model: str | None = None, device: str = "auto", window: bool = True,
                 out: Callable[[str], None] = _print_now, store: bool = True) -> int:
    """Run every check; print them; 0 when all pass, 1 (after a FAILED line) otherwise."""
    report = Report(out=out)
    started = time.perf_counter()
    where = Path(sys.executable).parent if is_frozen() else Path(__file__).resolve().parent
    report.say(f"lesionviewer {__version__} self-test: Python {platform.python_version()} on "
               f"{platform.platform()}, {'bundle' if is_frozen() else 'source'} at {where}")
    NetworkWatch.start()
    try:
        if window:
            check_window(report, model)
        analyzer = check_model(report, model, device)
        analysis = check_sample(report, analyzer)
        if store:
            check_store(report, analysis)
    except SelftestFailed as e:
        report.say(f"FAILED: {e}")
        return 1
    except Exception as e:  # noqa: BLE001  (every failure must end in a readable line)
        report.say(f"FAILED: {plain_reason(e)}")
        return 1
    finally:
        attempts = NetworkWatch.stop()
    if attempts:
        report.say(f"FAILED: lesionviewer tried to reach the network ({'; '.join(attempts[:3])}); "
                   "it must work offline.")
        return 1
    report.say("network: no connection or name lookup attempted")
    report.timings["total"] = time.perf_counter() - started
    report.say(f"OK ({report.timings['total']:.2f} s)")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model folder (default: the one the app uses)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-window", action="store_true", help="skip the Qt window check")
    p.add_argument("--offscreen", action="store_true",
                   help="draw the window off screen (installers; servers without a display)")


def run(args: argparse.Namespace) -> int:
    if args.offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return run_selftest(args.model, args.device, window=not args.no_window)
