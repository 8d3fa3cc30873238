"""Two client processes x 500 edits on the same 20 cases at once, on SQLite and PostgreSQL:
lost updates (must be 0) and conflicts surfaced (every save on a stale version must be told).

    python benchmarks/store_concurrency.py [--edits 500] [--cases 20] [--think-ms 0] [--backend both]

Each client is its own process (tests/store/store_clients.py ``edit``): it picks a case,
reads the raters' newest masks, continues the newest version (what the app shows on opening
the case) and saves a mask that encodes who saved it and when, as fast as it can (or after a
random 0..--think-ms, as a person drawing would); both start on one signal. Two set-ups: the same user in two programs (one line of versions, so every
interleaving is a conflict), and two raters (each their own line; a save is stale when it
continued the other's version and the other saved meanwhile). Afterwards every stored
version is compared with the clients' logs: a logged save missing or altered, or a stored
version nobody logged, is a lost update; stale saves are recomputed from the stored versions
alone and compared with the conflicts the clients were told about.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_common import add_backend_argument, cases_on, chosen, machine_load, store_clients_module  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=500, help="edits per client")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--think-ms", type=float, default=0,
                        help="each edit waits 0..this long between reading and saving (a person drawing)")
    add_backend_argument(parser)
    args = parser.parse_args()
    setups = {"one user, two programs": ("ann", "ann"), "two raters": ("ann", "bob")}
    for backend in chosen(args):
        for label, users in setups.items():
            with cases_on(backend, args.cases) as (url, case_ids, work):
                clients = store_clients_module()
                load_before = machine_load()
                logs, seconds = clients.run_edit_clients(
                    url, case_ids, [(users[0], 1), (users[1], 2)], args.edits, work / "run",
                    think_ms=args.think_ms)
                counts = clients.verify(url, case_ids, logs)
                ok = counts["lost"] == 0 and counts["missed"] == 0 and counts["saves"] == 2 * args.edits
                print(f"{backend:<10} {label:<23} 2 x {args.edits} edits on {args.cases} cases in {seconds:5.1f} s "
                      f"({2 * args.edits / seconds:5.0f} saves/s): lost {counts['lost']}, stale {counts['stale']}, "
                      f"surfaced {counts['surfaced']}, missed {counts['missed']}, false alarms "
                      f"{counts['false_alarms']}  {'ok' if ok else 'FAILED'}  [{load_before}]", flush=True)


if __name__ == "__main__":
    main()
