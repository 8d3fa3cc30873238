"""What the case-store benchmarks share: a fresh store URL per backend.

SQLite: a file in a temporary folder. PostgreSQL: a throwaway server on 127.0.0.1 started by
``tests/store/pg_server.py`` with fsync on (durable, as a real server would run), removed at
the end.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("sqlite", "postgresql")


def tests_module(name: str):
    """A helper module of tests/store (pg_server, store_clients)."""
    import importlib

    sys.path.insert(0, str(REPO / "tests" / "store"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def store_clients_module():
    return tests_module("store_clients")


@contextlib.contextmanager
def fresh_urls(backends: list[str], durable: bool = True) -> Iterator[dict[str, str]]:
    """{backend: URL of a new, empty database} for each of ``backends``; everything is removed
    on leaving."""
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lv-bench-")))
        if "sqlite" in backends:
            urls["sqlite"] = f"sqlite:///{folder / 'cases.sqlite'}"
        if "postgresql" in backends:
            pg = tests_module("pg_server")
            server = stack.enter_context(pg.PostgresServer(durable=durable))
            urls["postgresql"] = server.url(server.create_database("bench"))
        yield urls


@contextlib.contextmanager
def cases_on(backend: str, count: int) -> Iterator[tuple[str, list[int], Path]]:
    """(URL, case ids, scratch folder) of a fresh store on ``backend`` holding ``count`` small
    cases (tests/store/store_clients.py ``make_cases``); removed on leaving."""
    with fresh_urls([backend]) as urls, tempfile.TemporaryDirectory(prefix="lv-bench-") as work:
        work = Path(work)
        case_ids = store_clients_module().make_cases(urls[backend], work / "photos", count)
        yield urls[backend], case_ids, work


def machine_load() -> str:
    """``uptime``'s load averages and the CPU count, to print beside each figure."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def add_backend_argument(parser) -> None:
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")


def chosen(args) -> list[str]:
    return list(BACKENDS) if args.backend == "both" else [args.backend]
