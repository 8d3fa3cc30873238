"""How long the GUI thread stalls while the real app works, measured by a 10 ms heartbeat.

    python benchmarks/gui_stalls.py                      # every scenario below
    python benchmarks/gui_stalls.py folder --cases 200   # one scenario
    python benchmarks/gui_stalls.py draw --size 50mp
    python benchmarks/gui_stalls.py cached --size 12mp

The app runs offscreen (QT_QPA_PLATFORM=offscreen), with its folders under a temporary
LESIONVIEWER_HOME. A QTimer in the GUI thread fires every 10 ms; the longest gap between two
beats is the longest stall, and the number of beats says how much of the time the GUI had.

Scenarios (each in its own process, so peak memory is its own):

* ``folder``: a folder of N cases (symlinks to ISIC photos from ../shared/data, or copies of
  tests/data) is opened and analysed in the background for --seconds; prints the stall while
  opening, the longest stall after, beats, cases analysed. --model tiny uses a tiny random model
  (the list and the queue are what is measured), the default the shipped model.
* ``draw``: one photo of --size (600x450, 12mp, 50mp: a real photo upscaled) is opened and
  analysed by the shipped model; prints the longest stall from opening to one second after its
  result is on screen, the cache write and read times of that analysis, and peak memory.
* ``idle``: the heartbeat alone, for --seconds: what the machine itself adds.
* ``startup``: ``lesionviewer.app.main`` with a folder of --cases photos: when the window is
  shown, the model ready and the first case analysed, counted from the call.
* ``cached``: the photo of ``draw`` analysed once (cache filled), then a fresh window opens a
  folder of it plus others being analysed in the background; paging to it must show the cached
  result: prints the time from selecting it to its result on screen, and the longest stall.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "lesionviewer-ddpm-s96"
ISIC = REPO.parent / "shared" / "data" / "isic-train"
PHOTO = REPO / "tests" / "data" / "ISIC_0024311.jpg"
SIZES = {"600x450": (600, 450), "12mp": (4000, 3000), "50mp": (8660, 5773)}


# --- set-up -------------------------------------------------------------------------------------
def sized_photo(size: str, folder: Path) -> Path:
    """The test photo resized to ``size`` (JPEG, cached under /tmp between runs)."""
    import cv2

    w, h = SIZES[size]
    cache = Path(tempfile.gettempdir()) / "lesionviewer-bench-images"
    cache.mkdir(exist_ok=True)
    src = cache / f"photo_{size}.jpg"
    if not src.is_file():
        bgr = cv2.imread(str(PHOTO))
        big = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_CUBIC if w > 600 else cv2.INTER_AREA)
        cv2.imwrite(str(src), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    dst = folder / f"photo_{size}.jpg"
    shutil.copy(src, dst)
    return dst


def case_folder(n: int, folder: Path) -> Path:
    """n photos: symlinks to distinct ISIC photos when the data set is here, else copies."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in ISIC.glob("ISIC_*.jpg")) if ISIC.is_dir() else []
    if not sources:
        sources = sorted((REPO / "tests" / "data").glob("ISIC_*.jpg"))
    for i in range(n):
        src = sources[i % len(sources)]
        dst = folder / f"case_{i:05d}.jpg"
        if len(sources) >= n:
            dst.symlink_to(src)
        else:  # copies differ by one byte so each has its own content hash (own cache entry)
            dst.write_bytes(src.read_bytes() + i.to_bytes(4, "little"))
    return folder


def tiny_model(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import write_tiny_model  # the tests' tiny random model

    return write_tiny_model(folder / "tiny")


# --- the app under a heartbeat ------------------------------------------------------------------
class Heartbeat:
    def __init__(self):
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._beat)
        self.reset()

    def reset(self):
        self.beats, self.longest, self.last = 0, 0.0, time.perf_counter()
        self.started = self.last
        self.cpu_last, self.longest_cpu = time.thread_time(), 0.0

    def _beat(self):
        now, cpu = time.perf_counter(), time.thread_time()
        self.longest = max(self.longest, now - self.last)
        # CPU time the GUI thread itself used in the gap: the rest of a stall was spent waiting
        # (for the Python lock, or for a core on a busy machine)
        self.longest_cpu = max(self.longest_cpu, cpu - self.cpu_last)
        self.last, self.beats, self.cpu_last = now, self.beats + 1, cpu

    def start(self):
        self.reset()
        self.timer.start()

    def read(self) -> tuple[float, int, float]:
        """(longest gap so far incl. the current one, beats, seconds) in one go."""
        now = time.perf_counter()
        return max(self.longest, now - self.last), self.beats, now - self.started


def busy(beat: Heartbeat) -> str:
    return f"longest GUI-thread busy spell {beat.longest_cpu * 1000:.0f} ms"


def make_window(model_dir: Path, background: bool):
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    from PySide6.QtWidgets import QApplication

    from lesionviewer.app.dirs import app_dirs
    from lesionviewer.app.main_window import MainWindow
    from lesionviewer.app.preferences import load_settings

    app = QApplication.instance() or QApplication([])
    dirs = app_dirs().ensure()
    prefs = load_settings(dirs.config)
    prefs.analyse_folder_in_background = background
    window = MainWindow(prefs, dirs, model_dir=str(model_dir), device="cpu")
    window.ask_quit_anyway = lambda errors: True
    window.show()
    return app, window


def spin(app, until, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if until():
            return True
        time.sleep(0.001)
    return False


def wait_model(app, window, timeout=120.0):
    svc = window.session.service
    if not spin(app, lambda: svc.model is not None or svc.unavailable_message, timeout):
        raise SystemExit("the model did not load")
    if svc.model is None:
        raise SystemExit(svc.unavailable_message)


def threads() -> int:
    """The analysis thread's torch thread count (set by the app, or LESIONVIEWER_TORCH_THREADS)."""
    from lesionviewer.app.services.worker import analysis_threads

    return analysis_threads()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- scenarios ----------------------------------------------------------------------------------
def scenario_folder(args, work: Path) -> None:
    from lesionviewer.app.services.case import CaseStatus

    model = tiny_model(work) if args.model == "tiny" else Path(args.model)
    folder = case_folder(args.cases, work / "cases")
    app, window = make_window(model, background=True)
    wait_model(app, window)
    beat = Heartbeat()
    beat.start()
    t0 = time.perf_counter()
    window.open_paths([folder])
    opened = time.perf_counter() - t0
    spin(app, lambda: False, 1.0)
    open_stall, _, _ = beat.read()
    beat.start()
    spin(app, lambda: False, args.seconds)
    longest, beats, seconds = beat.read()
    done = sum(c.status == CaseStatus.ANALYSED for c in window.session.cases.cases)
    print(f"folder {args.cases} cases ({model.name}): open_paths {opened * 1000:.0f} ms, "
          f"longest stall in the first second {open_stall * 1000:.0f} ms; then over "
          f"{seconds:.1f} s: longest stall {longest * 1000:.0f} ms, {beats} heartbeats "
          f"(of {seconds / 0.010:.0f}), {busy(beat)}, {done} cases analysed, peak {peak_mb():.0f} MB")
    window.close()


def _analyse_one(app, window, photo: Path, timeout=300.0):
    session = window.session
    window.open_paths([photo])
    ok = spin(app, lambda: session.current is not None and session.current.analysis is not None
              and window.view.editor is not None, timeout)
    if not ok:
        raise SystemExit(f"{photo.name} was not analysed within {timeout:.0f} s")
    return session.current


def scenario_draw(args, work: Path) -> None:
    from lesionviewer.io.cache import AnalysisCache

    photo = sized_photo(args.size, work)
    app, window = make_window(Path(args.model), background=False)
    wait_model(app, window)
    beat = Heartbeat()
    beat.start()
    t0 = time.perf_counter()
    cur = _analyse_one(app, window, photo)
    shown = time.perf_counter() - t0
    stall_result, _, _ = beat.read()
    spin(app, lambda: False, 1.0)  # the outline, Dice and the first paints count too
    longest, beats, seconds = beat.read()
    a = cur.analysis
    cache = AnalysisCache(work / "bench-cache")
    t = time.perf_counter()
    cache.put("bench", a)
    put = time.perf_counter() - t
    t = time.perf_counter()
    back = cache.get("bench")
    get = time.perf_counter() - t
    assert back is not None
    h, w = a.consensus_mask.shape
    print(f"draw {args.size} ({w}x{h}): opened to result on screen {shown:.2f} s "
          f"(engine {a.timings.get('total', float('nan')):.2f} s, UNet pass "
          f"{a.timings.get('denoiser', float('nan')):.2f} s on {threads()} torch threads); longest GUI stall {longest * 1000:.0f} ms "
          f"({beats} beats in {seconds:.1f} s, {busy(beat)}); cache write {put:.2f} s, read {get:.2f} s, "
          f"{cache.nbytes / 1e6:.1f} MB; peak {peak_mb():.0f} MB")
    window.close()


def scenario_cached(args, work: Path) -> None:
    photo = sized_photo(args.size, work)
    model = Path(args.model)
    app, window = make_window(model, background=False)  # first window: fill the cache
    wait_model(app, window)
    _analyse_one(app, window, photo)
    window.close()
    window.deleteLater()
    spin(app, lambda: False, 0.5)

    folder = case_folder(args.cases, work / "cases")
    shutil.move(str(photo), str(folder / photo.name))
    app, window = make_window(model, background=True)
    wait_model(app, window)
    window.open_paths([folder])
    session = window.session
    spin(app, lambda: session.service.running is not None, 60)  # background jobs under way
    spin(app, lambda: False, 1.0)
    case = session.cases.find((folder / photo.name).resolve())
    beat = Heartbeat()
    beat.start()
    t0 = time.perf_counter()
    window.case_list.select_case(case)
    ok = spin(app, lambda: session.current is not None and session.current.case is case
              and session.current.analysis is not None and window.view.editor is not None, 60)
    shown = time.perf_counter() - t0
    spin(app, lambda: False, 1.0)
    longest, beats, seconds = beat.read()
    from_cache = ok and session.current.outcome.from_cache
    print(f"cached {args.size}: paging to it while {args.cases} cases analyse in the background: "
          f"result on screen after {shown * 1000:.0f} ms (from cache: {from_cache}); longest "
          f"stall {longest * 1000:.0f} ms ({beats} beats in {seconds:.1f} s, {busy(beat)})")
    window.close()


def scenario_startup(args, work: Path) -> None:
    """From the top of main() to the window on screen, the model ready and the first case
    analysed, with a folder of --cases photos; the heartbeat starts with the event loop."""
    folder = case_folder(args.cases, work / "cases")
    t0 = time.perf_counter()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    marks: dict[str, float] = {}
    beat = Heartbeat()

    def poll():
        from lesionviewer.app.main_window import MainWindow

        window = next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow)), None)
        if window is None or not window.isVisible():
            return
        if "window" not in marks:
            marks["window"] = time.perf_counter() - t0
            beat.start()
        session = window.session
        if "model" not in marks and session.service.model is not None:
            marks["model"] = time.perf_counter() - t0
        cur = session.current
        if "analysed" not in marks and cur is not None and cur.analysis is not None \
                and window.view.editor is not None:
            marks["analysed"] = time.perf_counter() - t0
            QTimer.singleShot(1000, window.close)

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(5)
    from lesionviewer.app import main as app_main

    QTimer.singleShot(120_000, app.quit)
    app_main([str(folder)], model_dir=args.model, device="cpu")
    longest, beats, seconds = beat.read()
    print(f"startup with {args.cases} cases: window shown {marks.get('window', float('nan')):.2f} s, "
          f"model ready {marks.get('model', float('nan')):.2f} s, first case analysed "
          f"{marks.get('analysed', float('nan')):.2f} s after main(); longest stall once shown "
          f"{longest * 1000:.0f} ms ({beats} beats in {seconds:.1f} s, {busy(beat)})")


def scenario_idle(args, work: Path) -> None:
    """The heartbeat alone in a bare Qt app: the stalls this machine adds by itself (a shared
    machine's other processes take the cores now and then)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    beat = Heartbeat()
    beat.start()
    spin(app, lambda: False, args.seconds)
    longest, beats, seconds = beat.read()
    print(f"idle: longest stall {longest * 1000:.0f} ms ({beats} beats in {seconds:.1f} s, "
          f"{busy(beat)}): the machine's own noise")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("scenario", nargs="?", default="all",
                   choices=("folder", "draw", "cached", "startup", "idle", "all"))
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--size", choices=tuple(SIZES), default="600x450")
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--model", default=None, help="model folder, or 'tiny' (folder scenario)")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="analysis threads (default: the app's choice for this machine)")
    args = p.parse_args()
    if args.scenario == "all":
        runs = [["idle", "--seconds", "20"],
                ["folder", "--cases", "200", "--model", "tiny"],
                ["folder", "--cases", "1000", "--model", "tiny"],
                ["folder", "--cases", "200", "--seconds", "30"]]
        runs += [["draw", "--size", s] for s in SIZES]
        runs += [["cached", "--size", s, "--cases", "50"] for s in ("600x450", "50mp")]
        runs += [["startup", "--cases", "200"]]
        for extra in runs:
            subprocess.run([sys.executable, __file__, *extra], check=False)
        return
    if args.model is None:
        args.model = str(SHIPPED)
    if args.torch_threads:
        os.environ["LESIONVIEWER_TORCH_THREADS"] = str(args.torch_threads)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="lesionviewer-bench-") as tmp:
        work = Path(tmp)
        os.environ["LESIONVIEWER_HOME"] = str(work / "home")
        {"folder": scenario_folder, "draw": scenario_draw, "cached": scenario_cached,
         "startup": scenario_startup, "idle": scenario_idle}[
            args.scenario](args, work)
        shutil.rmtree(work, ignore_errors=True)
        os._exit(0)  # leave without waiting on pool threads; everything is printed


if __name__ == "__main__":
    main()
