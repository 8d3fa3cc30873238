"""kill -9 a program in the middle of saving, again and again, on SQLite and PostgreSQL:
the store must open clean and lose at most the save under way (issue 9: at most 2 s).

    python benchmarks/store_kill.py [--kills 30] [--backend both]

Each round starts a client process (tests/store/store_clients.py ``churn``) that saves masks
as fast as it can on 20 cases, logging before and after each save; after its first save it
is left running for 0..300 ms and killed with SIGKILL, mostly inside a transaction. Then:
SQLite's ``PRAGMA integrity_check``, the store opened and every table read, and every save
the client was told was done looked up with its mask. Printed: confirmed saves missing (must
be 0), what became of the save under way, and the longest time between the last confirmed
save and the kill (the most a user could lose, here at the store's level).
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_common import add_backend_argument, cases_on, chosen, machine_load, store_clients_module  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    add_backend_argument(parser)
    args = parser.parse_args()
    for backend in chosen(args):
        with cases_on(backend, 20) as (url, case_ids, work):
            load_before = machine_load()
            rounds = store_clients_module().kill_rounds(url, case_ids, args.kills, work / "run", seed=7)
            in_flight = collections.Counter(r["in_flight"] or "none under way" for r in rounds)
            damaged = [r["integrity"] for r in rounds if r["integrity"] != "ok"]
            missing = sum(r["missing"] for r in rounds)
            worst = max(r["since_last_s"] for r in rounds)
            ok = not damaged and missing == 0 and worst < 2.0
            print(f"{backend:<10} {args.kills} kills, {sum(r['confirmed'] for r in rounds)} confirmed saves: "
                  f"missing {missing}, integrity {'ok' if not damaged else damaged[0]}, save under way: "
                  f"{dict(in_flight)}, last confirmed save at most {worst * 1000:.0f} ms before the kill  "
                  f"{'ok' if ok else 'FAILED'}  [{load_before}]", flush=True)


if __name__ == "__main__":
    main()
