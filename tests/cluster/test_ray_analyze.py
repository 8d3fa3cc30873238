"""`lesionviewer analyze --ray` on a real Ray cluster on 127.0.0.1 (2 CPUs, 2 analysers),
started and stopped here: the same files as the single-process analyze, a worker killed by
its pid changes nothing in the result, and a re-run does no work."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the 'cluster' extra (Ray) is not installed")

from lesionviewer.cli import main  # noqa: E402

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
BIN = Path(sys.executable).parent
REPORTS = ("lesionviewer-failures.tsv", "lesionviewer-summary.json")
PHOTOS = 40  # readable photos in the archive fixture (tests/cluster/conftest.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we may read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rindex(")") + 2:].split()[1])
                table[int(entry.name)] = (parent, (entry / "cmdline").read_bytes().decode(errors="replace"))
            except (OSError, ValueError, IndexError):
                continue
    return table


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of the processes started, directly or not, by ``root``."""
    table, found, frontier = processes(), {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, cmdline) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = cmdline
                frontier.append(pid)
    return found


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head --block` (2 CPUs) on 127.0.0.1 with its own token; stopped by signalling
    the processes it started, by pid (never `ray stop`, which stops every Ray on the machine)."""
    temp = Path(tempfile.mkdtemp(prefix="lvray-", dir="/tmp"))  # short: Ray's socket paths
    (temp / "token").write_text(secrets.token_hex(32))
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(temp / "token"),
               RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # single-node mode: every address is 127.0.0.1
    log = open(temp / "start.log", "wb")
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
         f"--temp-dir={temp}", "--object-store-memory=200000000",
         f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 180
        while b"Ray runtime started" not in (temp / "start.log").read_bytes():
            assert head.poll() is None, (temp / "start.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "the Ray head did not start within 180 s"
            time.sleep(0.5)
        addresses = {arg for cmdline in descendants(head.pid).values() for arg in cmdline.split("\0")
                     if arg.startswith("--node-ip-address=")}
        assert addresses == {"--node-ip-address=127.0.0.1"}, addresses  # every Ray process talks to 127.0.0.1
        yield {"address": f"127.0.0.1:{port}", "head": head.pid, "env": env}
    finally:
        started = descendants(head.pid)  # Ray's workers outlive the raylet for a while
        head.terminate()
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            pass
        for pid in [head.pid, *started]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        head.wait(10)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def analyze_on_ray(archive, out, model, cluster, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "lesionviewer"), "analyze", str(archive / "day1"), str(archive / "day2"), "--out", str(out),
         "--model", str(model), "--device", "cpu", "--ray", cluster["address"], "--workers", "2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=cluster["env"])


def finished(proc: subprocess.Popen, timeout=600) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=timeout)
    return proc.returncode, output.decode(errors="replace")


@pytest.fixture(scope="module")
def reference(archive, lively_model, tmp_path_factory) -> Path:
    """The single-process analyze, with one torch thread as each Ray analyser has (torch's
    reductions differ in the last bits with the thread count: docs/cluster.md)."""
    import torch

    out = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["analyze", str(archive / "day1"), str(archive / "day2"), "--out", str(out),
                     "--model", str(lively_model), "--device", "cpu"])
    finally:
        torch.set_num_threads(threads)
    assert code == 1  # the damaged photo
    return out


def result_files(out: Path) -> dict[str, Path]:
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*")) if p.is_file() and p.name not in REPORTS}


def assert_same_results(out: Path, reference: Path) -> None:
    ours, theirs = result_files(out), result_files(reference)
    assert sorted(ours) == sorted(theirs)
    assert len(ours) == 3 * PHOTOS
    for name, path in ours.items():
        if name.endswith(".json"):  # all but the timings, which no two runs share
            a, b = json.loads(path.read_bytes()), json.loads(theirs[name].read_bytes())
            assert {**a, "seconds": None} == {**b, "seconds": None}, name
        else:
            assert path.read_bytes() == theirs[name].read_bytes(), name


def summary(out: Path) -> dict:
    return json.loads((out / "lesionviewer-summary.json").read_bytes())


def test_same_results_as_analyze_then_a_rerun_does_nothing(cluster, archive, lively_model, reference, tmp_path):
    out = tmp_path / "ray"
    code, log = finished(analyze_on_ray(archive, out, lively_model, cluster))
    assert code == 1, log  # the damaged photo, as without --ray
    assert_same_results(out, reference)
    first = summary(out)
    assert (first["analysed"], first["skipped"], first["failed"]) == (PHOTOS, 0, 1), log
    assert first["images_per_second"] > 0 and first["seconds"]["analyse (sum over workers)"] > 0
    failures = (out / "lesionviewer-failures.tsv").read_text().splitlines()
    assert failures[0] == "path\treason" and len(failures) == 2 and "broken.jpg" in failures[1]

    written = {name: p.stat().st_mtime_ns for name, p in result_files(out).items()}
    code, log = finished(analyze_on_ray(archive, out, lively_model, cluster))
    again = summary(out)
    assert (again["analysed"], again["skipped"], again["failed"]) == (0, PHOTOS, 1), log
    assert again["seconds"]["analyse (sum over workers)"] == 0
    assert {name: p.stat().st_mtime_ns for name, p in result_files(out).items()} == written


def analyser_pids(head: int) -> list[int]:
    """The Ray analysers of our cluster: processes it started that are titled after the actor."""
    return [pid for pid, cmdline in descendants(head).items() if "AnalyzeActor" in cmdline]


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(cluster, archive, lively_model, reference, tmp_path):
    out = tmp_path / "ray"
    run = analyze_on_ray(archive, out, lively_model, cluster, "--batch-size", "1")
    deadline = time.monotonic() + 300
    while len(list(out.rglob("*_analysis.json"))) < 2:  # running, and not near its end
        assert run.poll() is None and time.monotonic() < deadline, finished(run)[1]
        time.sleep(0.05)
    victims = analyser_pids(cluster["head"])
    assert victims, "no analyser process found"
    os.kill(victims[0], signal.SIGKILL)
    done_at_kill = len(list(out.rglob("*_analysis.json")))
    code, log = finished(run)
    assert done_at_kill < PHOTOS, "the run ended before the kill; nothing was tested"
    assert code == 1, log
    assert_same_results(out, reference)  # complete, and no set twice under another name
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no half-written files
    result = summary(out)
    assert (result["analysed"], result["failed"]) == (PHOTOS, 1), log
