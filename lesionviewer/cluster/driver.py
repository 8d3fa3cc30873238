"""The driver of ``analyze --ray``: connect to (or start) a Ray cluster, stream the photos
through the Ray Data pipeline, write each result as it arrives, report progress and a summary.

The only module of lesionviewer that imports Ray.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from lesionviewer.analyze_cli import RESULT_SUFFIXES, ResultWriteError, collect, one_line
from lesionviewer.cluster.resume import previous_result
from lesionviewer.cluster.stages import ANALYSED, FAILED, SKIPPED, AnalyzeActor
from lesionviewer.cluster.writer import SUMMARY_FILE, FolderWriter, ResultWriter, write_failures, write_summary
from lesionviewer.engine import AnalysisSettings, Method
from lesionviewer.engine.checkpoint import ModelError, find_default_model

LOCAL = "local"
NAME = "lesionviewer analyze"


@dataclasses.dataclass
class Plan:
    """What the driver knows before the cluster is touched."""

    out: Path
    model_dir: Path
    model_id: str
    settings: AnalysisSettings  # as given (None = the model's), resolved by each actor
    resolved: dict  # resolved on the driver (CPU), for the resume check and the summary
    rows: list[dict]  # one per photo: path, case_id, previous_sha256, previous_device
    failures: list[tuple[str, str]]  # (path, reason) of paths that could not be listed
    started: float
    seconds: dict = dataclasses.field(default_factory=dict)


def _settings(args) -> AnalysisSettings:
    return AnalysisSettings(
        samples=args.samples, timestep_range=tuple(args.timesteps) if args.timesteps else None,
        crf=False if args.no_crf else None, method=Method(args.method) if args.method else None,
        threshold=args.threshold)


def make_plan(args) -> Plan | int:
    """The photos to send and what earlier runs left; an exit code after a one-line refusal."""
    from lesionviewer.engine.pipeline import Analyzer

    try:  # refuse a bad model or settings in one line before any cluster is touched
        model_dir = Path(args.model) if args.model else find_default_model()
        probe = Analyzer.from_dir(model_dir, device="cpu")
        resolved, model_id = probe.resolve(_settings(args)).to_dict(), probe.model_id
    except (ModelError, ValueError) as e:
        print(f"{NAME}: {e}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    cases, problems = collect(args.paths)
    failures = [(message.split(": ", 1)[0], one_line(message)) for message in problems]
    for _, message in failures:
        print(f"{NAME}: {message}", file=sys.stderr)
    if not cases:
        print(f"{NAME}: no images found", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path, case_id in cases:
        sha, device = previous_result(out, case_id, model_id, resolved, args.seed)
        rows.append(dict(path=str(path.absolute()), case_id=case_id, previous_sha256=sha, previous_device=device))
    return Plan(out, model_dir, model_id, _settings(args), resolved, rows, failures, started,
                {"list": time.perf_counter() - started})


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
    plan = make_plan(args)
    if isinstance(plan, int):
        return plan
    connecting = time.perf_counter()
    try:
        ray = _connect(args.ray, args.workers * args.cpus_per_worker if args.ray == LOCAL and args.workers else None)
    except Exception as e:  # ConnectionError, an authentication error, a bad address: one line
        print(f"{NAME}: cannot use the Ray cluster at {args.ray}: {one_line(e)[:400]}", file=sys.stderr)
        return 2
    try:
        resources = ray.cluster_resources()
        per_worker = args.gpus_per_worker or args.cpus_per_worker
        workers = args.workers or max(1, int(resources.get("GPU" if args.gpus_per_worker else "CPU", 1) // per_worker))
        plan.seconds["connect"] = time.perf_counter() - connecting
        print(f"{len(plan.rows)} image(s), model {plan.model_id}, {workers} Ray worker(s) at "
              f"{args.ray if args.ray != LOCAL else 'a local cluster'}", file=sys.stderr)
        return execute(pipeline(ray, plan, args, workers), plan, args, workers, writer or FolderWriter(plan.out))
    finally:
        ray.shutdown()


def pipeline(ray, plan: Plan, args, workers: int):
    """The Ray Data pipeline: rows -> an actor pool of analysers -> encoded results.

    One stage per actor: read, hash and decode (read_photos) then analyse and encode. A separate
    task stage for decoding would wait for CPUs the fixed actor pool holds, and the photo's
    pixels would cross the object store for nothing. Ray Data restarts a killed actor and
    retries its tasks by default (max_restarts=-1, max_task_retries=-1); the tests kill one.
    """
    batch = max(1, args.batch_size)
    return (ray.data.from_items(plan.rows, override_num_blocks=max(1, math.ceil(len(plan.rows) / batch)))
            .map_batches(AnalyzeActor, batch_size=batch, batch_format="numpy",
                         compute=ray.data.ActorPoolStrategy(size=workers),
                         fn_constructor_args=(str(plan.model_dir), args.device, plan.settings, args.seed,
                                              args.cpus_per_worker),
                         num_cpus=args.cpus_per_worker, num_gpus=args.gpus_per_worker or None))


def execute(dataset, plan: Plan, args, workers: int, writer: ResultWriter) -> int:
    """Write each result as it streams in (a retried block's repeats dropped), then the reports."""
    counts = {ANALYSED: 0, SKIPPED: 0, FAILED: len(plan.failures)}
    failures = list(plan.failures)
    seen: set[str] = set()
    duplicates = 0
    stage = {"read": 0.0, "analyse": 0.0, "encode": 0.0, "write": 0.0}
    peak_mb: dict[int, float] = {}
    running = time.perf_counter()
    with tqdm(total=len(plan.rows), desc="analyze (ray)", unit="image", file=sys.stderr, dynamic_ncols=True) as bar:
        for row in dataset.iter_rows():
            case_id, status, error = str(row["case_id"]), str(row["status"]), str(row["error"])
            if case_id in seen:
                duplicates += 1
                continue
            seen.add(case_id)
            bar.update(1)
            pid = int(row["worker_pid"])
            peak_mb[pid] = max(peak_mb.get(pid, 0.0), float(row["worker_peak_mb"]))
            for key in ("read", "analyse", "encode"):
                stage[key] += float(row[f"seconds_{key}"])
            if status == ANALYSED:
                writing = time.perf_counter()
                try:
                    writer.write(case_id, list(zip(RESULT_SUFFIXES, (bytes(row["consensus_png"]),
                                                                      bytes(row["variance_png"]),
                                                                      bytes(row["record_json"])))))
                except ResultWriteError as e:
                    status, error = FAILED, f"{row['path']}: {e}"
                stage["write"] += time.perf_counter() - writing
            counts[status] = counts.get(status, 0) + 1
            if status == FAILED:
                failures.append((str(row["path"]), one_line(error)))
                tqdm.write(f"{NAME}: {one_line(error)}", file=sys.stderr)
    writer.close()
    seconds = plan.seconds
    seconds["pipeline"] = time.perf_counter() - running
    seconds.update({f"{key} (sum over workers)": value for key, value in stage.items() if key != "write"})
    seconds["write"] = stage["write"]
    seconds["wall"] = time.perf_counter() - plan.started
    images = len(plan.rows) + len(plan.failures)
    summary = {
        "images": images, "analysed": counts[ANALYSED], "skipped": counts[SKIPPED], "failed": counts[FAILED],
        "duplicates_dropped": duplicates,
        "images_per_second": round(counts[ANALYSED] / seconds["pipeline"], 3),
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "workers": workers, "cpus_per_worker": args.cpus_per_worker, "gpus_per_worker": args.gpus_per_worker,
        "address": args.ray, "model_id": plan.model_id, "settings": plan.resolved, "seed": args.seed,
        "worker_peak_mb": {str(pid): round(mb, 1) for pid, mb in sorted(peak_mb.items())},
        "failures": [{"path": p, "reason": r} for p, r in failures],
    }
    write_failures(plan.out, failures)
    write_summary(plan.out, summary)
    print(f"{counts[ANALYSED]} analysed, {counts[SKIPPED]} unchanged and skipped, {counts[FAILED]} failed "
          f"of {images} image(s) into {plan.out}; summary in {plan.out / SUMMARY_FILE}", file=sys.stderr)
    return 1 if failures else 0
