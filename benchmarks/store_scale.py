"""The case store at 100,000 cases: review-queue queries and opening a case, on SQLite and
PostgreSQL (issue 9's target: each within 200 ms on this machine).

    python benchmarks/store_scale.py [--cases 100000] [--runs 9] [--backend both]

The store is created by ``CaseStore.open`` (its migrations), then filled in bulk through the
schema's tables (bound executemany inserts, as a long-running team store would hold): every
case analysed (GED, malignancy, 5 % withheld), 10 % with two raters' masks (1024 x 768, 1-bit
PNG; 4000 x 3000 on every 1000th case) and their disagreement, one rater with 3 versions on
1 %, an audit row per write. Then,
through the public API only:

* ``review_queue(order, limit=200)`` for each order, alone, behind a state filter and a rater
  filter, on the first page and a page 20,000 rows deep;
* opening a case as the app's Review panel does (lesionviewer/app/review/review_sync.py):
  ``get_case`` + ``latest_masks`` + the agreement of those masks, on a two-rater case, at
  1024 x 768 and at 4000 x 3000 (12 MP). (``CaseStore.agreement(case_id)`` would read and
  decode the masks a second time.)

Each is run ``--runs`` times after one warm-up; median and max are printed, with the load.
PostgreSQL is a throwaway server (tests/store/pg_server.py) with fsync on, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_common import (add_backend_argument, chosen, fresh_urls, machine_load,  # noqa: E402
                          tests_module)

MASK_H, MASK_W = 768, 1024
BIG_H, BIG_W = 3000, 4000  # a 12 MP photo: every 1000th case, to time opening one of those
CHUNK = 5000
STATES = (("new", 0, 0.05), ("analysed", 1, 0.60), ("in review", 2, 0.15), ("corrected", 3, 0.12),
          ("signed off", 4, 0.08))


def ellipse_masks(count: int, rng, height: int = MASK_H, width: int = MASK_W) -> list[bytes]:
    import cv2

    from lesionviewer.store.masks import encode_mask

    masks = []
    for _ in range(count):
        canvas = np.zeros((height, width), np.uint8)
        centre = (int(rng.integers(width * 0.3, width * 0.7)), int(rng.integers(height * 0.3, height * 0.65)))
        axes = (int(rng.integers(width // 10, width // 4)), int(rng.integers(height // 10, height // 4)))
        cv2.ellipse(canvas, centre, axes, float(rng.integers(0, 180)), 0, 360, 1, -1)
        masks.append(encode_mask(canvas.astype(bool)))
    return masks


def fill(url: str, n_cases: int, seed: int = 0) -> list[int]:
    """Fill an empty store with ``n_cases``; returns the ids of the two-rater cases."""
    from lesionviewer.store import CaseStore
    from lesionviewer.store.db import make_engine
    from lesionviewer.store.schema import analyses, audit, cases, mask_versions

    from lesionviewer.store.url import is_postgresql

    # a team store records the database login: there the owner, who fills it in bulk below
    with CaseStore.open(url, user=None if is_postgresql(url) else "bench"):
        pass  # creates the schema (migrations) and the first user
    rng = np.random.default_rng(seed)
    pngs = ellipse_masks(8, rng)
    big_pngs = ellipse_masks(4, rng, BIG_H, BIG_W)
    now = dt.datetime.now(dt.timezone.utc)
    names, ranks, weights = zip(*[(s, r, w) for s, r, w in STATES])
    engine = make_engine(url)
    two_raters: list[int] = []
    with engine.begin() as conn:
        for start in range(1, n_cases + 1, CHUNK):
            ids = range(start, min(start + CHUNK, n_cases + 1))
            case_rows, analysis_rows, version_rows, audit_rows = [], [], [], []
            for case_id in ids:
                state_index = int(rng.choice(len(names), p=weights))
                ged = float(rng.uniform(0, 0.3))
                withheld = rng.random() < 0.05
                rated = case_id % 10 == 0
                big = case_id % 1000 == 0
                height, width = (BIG_H, BIG_W) if big else (MASK_H, MASK_W)
                disagreement = float(rng.uniform(0, 0.5)) if rated else None
                case_rows.append(dict(
                    id=case_id, photo_uri=f"/archive/photos/ISIC_{case_id:07d}.jpg",
                    content_sha256=f"{case_id:064x}", width=width, height=height, size_bytes=250_000,
                    labels={"diagnosis": "nevus"}, state=names[state_index], state_rank=ranks[state_index],
                    state_by="bench", state_at=now, state_comment=None, row_version=1, created_at=now,
                    created_by="bench", ged=ged, malignancy=None if withheld else float(rng.random()),
                    queue_uncertainty=1 + ged if withheld else ged, disagreement=disagreement,
                    queue_disagreement=-1.0 if disagreement is None else disagreement,
                    raters=2 if rated else 0, last_author="rater_b" if rated else None))
                analysis_rows.append(dict(
                    case_id=case_id, author="bench", created_at=now, model_id="lesionviewer-ddpm-s96@239aea37",
                    settings={"samples": 4}, ged=ged, ged_level="low", malignancy=None, malignancy_low=None,
                    malignancy_high=None, withheld_reason="ood" if withheld else None, ood=bool(withheld),
                    ood_score=None, maps_uri=None, summary={"ged": ged}))
                audit_rows.append(dict(at=now, user="bench", case_id=case_id, action="add_case", detail={}))
                if rated:
                    two_raters.append(case_id)
                    for author in ("rater_a", "rater_b"):
                        versions = 3 if (author == "rater_a" and case_id % 100 == 0) else 1
                        for number in range(1, versions + 1):
                            version_rows.append(dict(
                                case_id=case_id, author=author, created_at=now, parent_id=None, number=number,
                                width=width, height=height, area_px=150_000, source="edit",
                                mask_png=(big_pngs if big else pngs)[int(rng.integers(4 if big else 8))]))
                            audit_rows.append(dict(at=now, user=author, case_id=case_id, action="save_mask",
                                                   detail={"number": number}))
            conn.execute(cases.insert(), case_rows)
            conn.execute(analyses.insert(), analysis_rows)
            if version_rows:
                conn.execute(mask_versions.insert(), version_rows)
            conn.execute(audit.insert(), audit_rows)
        if conn.dialect.name == "postgresql":  # ids were given explicitly: move the sequence on
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum would soon after a bulk load
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return two_raters


def timed(fn, runs: int) -> tuple[float, float, float]:
    """(first call, median, max) in milliseconds; the first call is the warm-up."""
    started = time.perf_counter()
    fn(0)
    first = (time.perf_counter() - started) * 1000
    times = []
    for i in range(1, runs + 1):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    return first, statistics.median(times), max(times)


def measure(url: str, two_raters: list[int], runs: int, deep: int) -> list[tuple[str, tuple[float, float, float]]]:
    from lesionviewer.store import CaseStore
    from lesionviewer.store.agreement import agreement
    from lesionviewer.store.states import ReviewState

    results = []
    rng = random.Random(1)
    with CaseStore.open(tests_module("pg_server").login_url(url, "rater_a"), user="rater_a") as store:
        for order in ("uncertainty", "disagreement", "state"):
            for label, kwargs in (("all", {}), ("state=analysed", {"state": ReviewState.ANALYSED}),
                                  ("rater=rater_b", {"rater": "rater_b"}),
                                  (f"offset {deep}", {"offset": deep})):
                def query(_i, order=order, kwargs=kwargs):
                    rows = store.review_queue(order=order, limit=200, **kwargs)
                    assert rows, (order, kwargs)
                results.append((f"review_queue({order}, {label}, limit=200)", timed(query, runs)))
        for size, pool in ((f"{MASK_W}x{MASK_H}", [c for c in two_raters if c % 1000]),
                           (f"{BIG_W}x{BIG_H}", [c for c in two_raters if c % 1000 == 0])):
            picks = rng.sample(pool, min(len(pool), runs + 1))

            def open_case(i, picks=picks):
                case_id = picks[i % len(picks)]
                store.get_case(case_id)
                masks = store.latest_masks(case_id)
                assert len(masks) == 2 and agreement(masks) is not None
            results.append((f"open a case: get_case + latest_masks + agreement (2 raters, {size})",
                            timed(open_case, runs)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    add_backend_argument(parser)
    args = parser.parse_args()
    with fresh_urls(chosen(args)) as urls:
        for backend, url in urls.items():
            started = time.perf_counter()
            two_raters = fill(url, args.cases)
            print(f"\n{backend}: filled {args.cases} cases ({len(two_raters)} with two raters) in "
                  f"{time.perf_counter() - started:.0f} s; {machine_load()}", flush=True)
            for name, (first, median, worst) in measure(url, two_raters, args.runs, min(20_000, args.cases // 5)):
                verdict = "ok" if median < 200 else "OVER 200 ms"
                print(f"  {name:<72} first {first:7.1f}  median {median:7.1f}  max {worst:7.1f} ms  {verdict}",
                      flush=True)
            print(f"  ({machine_load()})", flush=True)


if __name__ == "__main__":
    main()
