"""The driver of ``analyze --ray``: connect to (or start) a Ray cluster, stream the photos
through the Ray Data pipeline, write each result as it arrives, report progress and a summary.

The only module of lesionviewer that imports Ray.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from lesionviewer.analyze_cli import ResultWriteError, collect, one_line
from lesionviewer.cluster.resume import previous_result
from lesionviewer.cluster.stages import ANALYSED, FAILED, SKIPPED, AnalyzeActor
from lesionviewer.cluster.writer import FolderWriter, ResultWriter, write_failures, write_summary
from lesionviewer.engine import AnalysisSettings, Method
from lesionviewer.engine.checkpoint import ModelError, find_default_model

LOCAL = "local"


def _settings(args) -> AnalysisSettings:
    return AnalysisSettings(
        samples=args.samples, timestep_range=tuple(args.timesteps) if args.timesteps else None,
        crf=False if args.no_crf else None, method=Method(args.method) if args.method else None,
        threshold=args.threshold)


def _connect(address: str, num_cpus: int | None):
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # patient data: no telemetry unless asked
    options = dict(logging_level="WARNING", log_to_driver=False, ignore_reinit_error=True)
    if address == LOCAL:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
    else:
        ray.init(address=address, **options)
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver draws one bar of its own
    context.print_on_execution_start = False
    return ray


def run_on_ray(args, writer: ResultWriter | None = None) -> int:
    from lesionviewer.engine.pipeline import Analyzer

    name = "lesionviewer analyze"
    try:  # refuse a bad model or settings in one line before any cluster is touched
        model_dir = Path(args.model) if args.model else find_default_model()
        probe = Analyzer.from_dir(model_dir, device="cpu")
        settings = probe.resolve(_settings(args)).to_dict()
        model_id = probe.model_id
        del probe
    except (ModelError, ValueError) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    cases, problems = collect(args.paths)
    failures = [(path, one_line(message)) for path, message in
                ((m.split(":", 1)[0], m) for m in problems)]
    for _, message in failures:
        print(f"{name}: {message}", file=sys.stderr)
    if not cases:
        print(f"{name}: no images found", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path, case_id in cases:
        sha, device = previous_result(out, case_id, model_id, settings, args.seed)
        rows.append(dict(path=str(path.absolute()), case_id=case_id, previous_sha256=sha, previous_device=device))
    seconds = {"list": time.perf_counter() - started}

    connecting = time.perf_counter()
    try:
        ray = _connect(args.ray, args.workers * args.cpus_per_worker if args.ray == LOCAL and args.workers else None)
    except Exception as e:  # ConnectionError, an authentication error, a bad address: one line
        print(f"{name}: cannot use the Ray cluster at {args.ray}: {one_line(e)[:400]}", file=sys.stderr)
        return 2
    try:
        return _analyse(ray, args, rows, cases, problems, failures, out, model_dir, model_id, settings,
                        seconds, started, connecting, writer)
    finally:
        ray.shutdown()


def _analyse(ray, args, rows, cases, problems, failures, out, model_dir, model_id, settings,
             seconds, started, connecting, writer) -> int:
    name = "lesionviewer analyze"
    resources = ray.cluster_resources()
    per_worker = args.gpus_per_worker or args.cpus_per_worker
    workers = args.workers or max(1, int(resources.get("GPU" if args.gpus_per_worker else "CPU", 1) // per_worker))
    seconds["connect"] = time.perf_counter() - connecting
    print(f"{len(cases)} image(s), model {model_id}, {workers} Ray worker(s) at "
          f"{args.ray if args.ray != LOCAL else 'a local cluster'}", file=sys.stderr)

    batch = max(1, args.batch_size)
    # One stage per actor: read, hash and decode (read_photos) then analyse and encode. A separate
    # task stage for decoding would wait for CPUs the fixed actor pool holds, and the photo's
    # pixels would cross the object store for nothing. Ray Data restarts a killed actor and
    # retries its tasks by default (max_restarts=-1, max_task_retries=-1); the tests kill one.
    dataset = (ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows) / batch)))
               .map_batches(AnalyzeActor, batch_size=batch, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=workers),
                            fn_constructor_args=(str(model_dir), args.device, _settings(args), args.seed,
                                                 args.cpus_per_worker),
                            num_cpus=args.cpus_per_worker, num_gpus=args.gpus_per_worker or None))
    writer = writer or FolderWriter(out)
    counts = {ANALYSED: 0, SKIPPED: 0, FAILED: len(failures)}
    seen: set[str] = set()
    duplicates = 0
    stage = {"read": 0.0, "analyse": 0.0, "encode": 0.0, "write": 0.0}
    peak_mb: dict[int, float] = {}
    running = time.perf_counter()
    with tqdm(total=len(rows), desc="analyze (ray)", unit="image", file=sys.stderr, dynamic_ncols=True) as bar:
        for row in dataset.iter_rows():
            case_id, status = str(row["case_id"]), str(row["status"])
            if case_id in seen:  # a retried block can deliver an image twice: keep the first
                duplicates += 1
                continue
            bar.update(1)
            seen.add(case_id)
            pid = int(row["worker_pid"])
            peak_mb[pid] = max(peak_mb.get(pid, 0.0), float(row["worker_peak_mb"]))
            for key in ("read", "analyse", "encode"):
                stage[key] += float(row[f"seconds_{key}"])
            if status == ANALYSED:
                writing = time.perf_counter()
                try:
                    writer.write(case_id, [("_consensus.png", bytes(row["consensus_png"])),
                                           ("_variance.png", bytes(row["variance_png"])),
                                           ("_analysis.json", bytes(row["record_json"]))])
                except ResultWriteError as e:
                    status, row["error"] = FAILED, f"{row['path']}: {e}"
                stage["write"] += time.perf_counter() - writing
            counts[status] = counts.get(status, 0) + 1
            if status == FAILED:
                failures.append((str(row["path"]), one_line(row["error"])))
                tqdm.write(f"{name}: {one_line(row['error'])}", file=sys.stderr)
    writer.close()
    seconds["pipeline"] = time.perf_counter() - running
    seconds.update({f"{key} (sum over workers)": round(value, 4) for key, value in stage.items() if key != "write"})
    seconds["write"] = stage["write"]
    seconds["wall"] = time.perf_counter() - started
    summary = {
        "images": len(cases) + len(problems), "analysed": counts[ANALYSED], "skipped": counts[SKIPPED],
        "failed": counts[FAILED], "duplicates_dropped": duplicates,
        "images_per_second": round(counts[ANALYSED] / seconds["pipeline"], 3) if seconds["pipeline"] else None,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "workers": workers, "cpus_per_worker": args.cpus_per_worker, "gpus_per_worker": args.gpus_per_worker,
        "address": args.ray, "model_id": model_id, "settings": settings, "seed": args.seed,
        "worker_peak_mb": {str(pid): round(mb, 1) for pid, mb in sorted(peak_mb.items())},
        "failures": [{"path": p, "reason": r} for p, r in failures],
    }
    write_failures(out, failures)
    write_summary(out, summary)
    print(f"{counts[ANALYSED]} analysed, {counts[SKIPPED]} unchanged and skipped, {counts[FAILED]} failed "
          f"of {summary['images']} image(s) into {out}; summary in {out / 'lesionviewer-summary.json'}",
          file=sys.stderr)
    return 1 if failures else 0
