"""Client processes that hammer one case store, and the check of what they left behind.

Used by tests/store/test_concurrency_clients.py and test_kill_clients.py (small sizes) and by
benchmarks/store_concurrency.py and store_kill.py (the issue's sizes). Run as a script it is
one client process:

    store_clients.py edit  URL USER SEED EDITS LOG SYNC_DIR LOCKSTEP THINK_MS CASE_ID...
    store_clients.py churn URL USER SEED LOG CASE_ID...

``edit``: waits until SYNC_DIR/go exists (so that both clients start together), then EDITS
times: picks a case, reads the raters' newest masks, takes the newest version of any rater as
the edit's parent (what the app shows on opening a case), saves a mask that encodes (user,
edit number), and logs ``{seq, case, parent, version, conflict}`` as one JSON line.
``churn``: the same without end and without waiting, logging ``begin`` before and ``done``
after each save, until it is killed.

:func:`verify` reads the store afterwards and counts lost updates (a logged save whose version
is missing or holds another mask, or stored versions nobody logged) and stale saves (by the
store's rule, recomputed from the stored versions alone: the parent's line had moved on, or
this user had saved past the parent) against the conflicts the clients were told about.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import zlib
from pathlib import Path

import numpy as np

SIDE = 32  # photos and masks are SIDE x SIDE: the cost measured is the store's, not PNG's


def fingerprint(user: str, seq: int) -> np.ndarray:
    """The SIDExSIDE bool mask client ``user`` saves as its edit number ``seq`` (distinct per pair)."""
    return np.random.default_rng(zlib.crc32(f"{user}:{seq}".encode())).random((SIDE, SIDE)) < 0.5


def _open(url: str, user: str):
    """``CaseStore.open`` as ``user``; on the test server through that person's own login
    (a team store records the database login: pg_server.login_url)."""
    from lesionviewer.store import CaseStore

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pg_server

    return CaseStore.open(pg_server.login_url(url, user), user=user)


def make_cases(url: str, folder: Path, count: int) -> list[int]:
    """``count`` new SIDExSIDE photos in ``folder``, added to the store; their case ids."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    with _open(url, "setup") as store:
        for i in range(count):
            photo = folder / f"case_{i:03d}.png"
            pixels = np.random.default_rng(i).integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
            cv2.imwrite(str(photo), pixels)
            ids.append(store.add_case(photo).id)
    return ids


def _log(handle, **entry) -> None:
    handle.write(json.dumps(entry) + "\n")
    handle.flush()  # survives a kill -9 of this process (the page cache is the kernel's)


def _barrier(sync: Path, name: str, me: str, parties: int) -> None:
    (sync / f"{name}-{me}").touch()
    while len(list(sync.glob(f"{name}-*"))) < parties:
        time.sleep(0.0005)


def edit(url: str, user: str, seed: int, edits: int, log: Path, sync: Path, case_ids: list[int],
         lockstep: int = 0, think_ms: float = 0) -> None:
    """See the module text. ``lockstep`` = the number of clients: all of them pick the same
    case each round, read it, wait for each other, then save, so every round the later
    savers are stale by construction (0: run freely). ``think_ms``: each edit takes a random
    0..think_ms between reading the case and saving (a person drawing)."""
    rng = random.Random(0 if lockstep else seed)
    me = f"{user}-{seed}"
    with _open(url, user) as store, open(log, "w") as handle:
        (sync / f"ready-{me}").touch()
        while not (sync / "go").exists():
            time.sleep(0.001)
        for seq in range(edits):
            case_id = rng.choice(case_ids)
            latest = store.latest_masks(case_id)
            parent = max((v.id for v in latest.values()), default=None)
            if think_ms:
                time.sleep(rng.uniform(0, think_ms) / 1000)
            if lockstep:
                _barrier(sync, f"read{seq}", me, lockstep)
            result = store.save_mask(case_id, fingerprint(f"{user}/{seed}", seq), parent)
            _log(handle, seq=seq, case=case_id, parent=parent, version=result.version.id,
                 conflict=result.conflict.id if result.conflict else None)
            if lockstep:
                _barrier(sync, f"saved{seq}", me, lockstep)


def churn(url: str, user: str, seed: int, log: Path, case_ids: list[int]) -> None:
    rng = random.Random(seed)
    with _open(url, user) as store, open(log, "w") as handle:
        _log(handle, event="open", t=time.time())
        for seq in range(10**9):
            case_id = rng.choice(case_ids)
            latest = store.latest_masks(case_id)
            parent = latest[user].id if user in latest else None
            _log(handle, event="begin", seq=seq, case=case_id, t=time.time())
            result = store.save_mask(case_id, fingerprint(f"{user}/{seed}", seq), parent)
            _log(handle, event="done", seq=seq, version=result.version.id, t=time.time())


def read_log(path: Path) -> list[dict]:
    """The log's complete lines (a kill may cut the last one short)."""
    entries = []
    for line in Path(path).read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


def stored_versions(url: str, case_ids: list[int]) -> dict[int, object]:
    """{version id: MaskVersion} of every mask stored on ``case_ids``."""
    with _open(url, "verifier") as store:
        return {v.id: v for case_id in case_ids for v in store.history(case_id)}


def stale_saves(versions: dict[int, object]) -> set[int]:
    """Ids of versions saved on a stale parent: the parent's line (its author's versions of the
    case) had a newer version, or the saving author had one newer than the parent."""
    stale = set()
    for v in versions.values():
        earlier = [w for w in versions.values() if w.case_id == v.case_id and w.id < v.id]
        p = v.parent_id
        line_moved = p is not None and any(w.author == versions[p].author and w.id > p for w in earlier)
        own_newer = any(w.author == v.author and (p is None or w.id > p) for w in earlier)
        if line_moved or own_newer:
            stale.add(v.id)
    return stale


def verify(url: str, case_ids: list[int], logs: dict[str, Path]) -> dict[str, int]:
    """Counts: saves (logged), stored, lost (logged but missing or altered, plus stored but
    never logged), stale (by the rule above), surfaced (stale and reported), missed (stale,
    not reported), false_alarms (reported, not stale)."""
    versions = stored_versions(url, case_ids)
    saves = {}
    lost = 0
    for client, path in logs.items():
        for entry in read_log(path):
            saves[entry["version"]] = entry
            v = versions.get(entry["version"])
            if v is None or v.parent_id != entry["parent"] or v.case_id != entry["case"] \
                    or not np.array_equal(v.mask, fingerprint(client, entry["seq"])):
                lost += 1
    lost += len(set(versions) - set(saves))
    stale = stale_saves(versions)
    reported = {vid for vid, e in saves.items() if e["conflict"] is not None}
    return {"saves": len(saves), "stored": len(versions), "lost": lost, "stale": len(stale),
            "surfaced": len(stale & reported), "missed": len(stale - reported),
            "false_alarms": len(reported - stale)}


def spawn(*args: str, env: dict | None = None):
    import subprocess

    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *map(str, args)],
                            env={**os.environ, **(env or {})})


def run_edit_clients(url: str, case_ids: list[int], clients: list[tuple[str, int]], edits: int,
                     workdir: Path, timeout_s: float = 600, lockstep: bool = False,
                     think_ms: float = 0) -> tuple[dict[str, Path], float]:
    """Run one ``edit`` process per (user, seed), started together (in lockstep rounds, see
    :func:`edit`, when asked); returns ({client: log},
    seconds from the start signal until the last one finished). Raises RuntimeError when a
    client fails."""
    sync = workdir / "sync"
    sync.mkdir(parents=True, exist_ok=True)
    logs = {f"{user}/{seed}": workdir / f"{user}-{seed}.jsonl" for user, seed in clients}
    procs = [spawn("edit", url, user, seed, edits, workdir / f"{user}-{seed}.jsonl", sync,
                   len(clients) if lockstep else 0, think_ms, *case_ids) for user, seed in clients]
    deadline = time.monotonic() + timeout_s
    while len(list(sync.glob("ready-*"))) < len(procs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            raise RuntimeError("a client did not get ready: " + str([p.poll() for p in procs]))
        time.sleep(0.01)
    started = time.perf_counter()
    (sync / "go").touch()
    codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in procs]
    seconds = time.perf_counter() - started
    if any(codes):
        raise RuntimeError(f"client exit codes {codes}")
    return logs, seconds


def integrity(url: str) -> str:
    """SQLite's ``PRAGMA integrity_check`` ("ok" when sound); for PostgreSQL, "ok" when the
    store opens and every table can be counted (a killed client cannot damage its files)."""
    from sqlalchemy import create_engine, func, select

    from lesionviewer.store import schema as t
    from lesionviewer.store.url import connect_url, sqlite_file

    path = sqlite_file(url)
    if path is not None:
        import sqlite3

        with sqlite3.connect(path) as conn:
            result = "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        if result != "ok":
            return result
    with _open(url, "verifier"):
        pass
    engine = create_engine(connect_url(url))
    with engine.connect() as conn:
        for table in (t.users, t.cases, t.analyses, t.mask_versions, t.audit):
            conn.execute(select(func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return "ok"


def kill_rounds(url: str, case_ids: list[int], rounds: int, workdir: Path, seed: int = 0,
                max_delay_s: float = 0.3) -> list[dict]:
    """``rounds`` times: start a ``churn`` client, let it save for a random while after its
    first save, kill -9 it, then check the store. Per round: {"confirmed": saves it was told
    were done, "missing": of those, not in the store or altered (must be 0), "in_flight":
    the save under way at the kill ("rolled back", "committed" or None), "since_last_s":
    seconds from its last confirmed save to the kill, "integrity": "ok" or the damage}."""
    import signal

    rng = random.Random(seed)
    results = []
    workdir.mkdir(parents=True, exist_ok=True)
    for round_ in range(rounds):
        log = workdir / f"churn-{round_}.jsonl"
        proc = spawn("churn", url, "churner", round_, log, *case_ids)
        deadline = time.monotonic() + 120
        while not any(e.get("event") == "done" for e in (read_log(log) if log.exists() else [])):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the churn client stopped before its first save ({proc.poll()})")
            time.sleep(0.02)
        time.sleep(rng.uniform(0, max_delay_s))
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        proc.wait()
        entries = read_log(log)
        done = {e["seq"]: e for e in entries if e.get("event") == "done"}
        begun = [e for e in entries if e.get("event") == "begin"]
        versions = stored_versions(url, case_ids)
        missing = 0
        for seq, entry in done.items():
            v = versions.get(entry["version"])
            if v is None or not np.array_equal(v.mask, fingerprint(f"churner/{round_}", seq)):
                missing += 1
        in_flight = None
        if begun and begun[-1]["seq"] not in done:
            last = begun[-1]
            mask = fingerprint(f"churner/{round_}", last["seq"])
            committed = any(v.author == "churner" and v.case_id == last["case"] and np.array_equal(v.mask, mask)
                            for v in versions.values())
            in_flight = "committed" if committed else "rolled back"
        last_done = max((e["t"] for e in done.values()), default=killed_at)
        results.append({"confirmed": len(done), "missing": missing, "in_flight": in_flight,
                        "since_last_s": killed_at - last_done, "integrity": integrity(url)})
    return results


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "edit":
        url, user, seed, edits, log, sync, lockstep, think_ms, *cases = argv[1:]
        edit(url, user, int(seed), int(edits), Path(log), Path(sync), [int(c) for c in cases],
             int(lockstep), float(think_ms))
    elif mode == "churn":
        url, user, seed, log, *cases = argv[1:]
        churn(url, user, int(seed), Path(log), [int(c) for c in cases])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
