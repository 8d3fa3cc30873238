"""Throughput of `analyze` in-process vs on Ray with 1 and 2 workers, side by side in one run.

    python benchmarks/ray_throughput.py [--model models/NAME] [--limit 382] [--mp12 8] [--workers 1 2]

Photo sets: the `val` photos of ../shared/data/isic-train (splits.csv; 256x256 JPEGs; --limit
takes the first N) and --mp12 photos of 12 MP (4000x3000 JPEGs made by enlarging val photos).
In-process: one torch thread, the single-process analyze's own functions (decode, analyse,
encode, write), the model loaded before the clock starts. Ray: one local cluster with as many
CPUs as the most workers asked for, one CPU (one torch thread) per worker, the same pipeline as
`analyze --ray` (lesionviewer.cluster.driver), a fresh output folder per run; its time
includes the actors' start-up (each loads the model once). Prints images/s per set and
configuration, Ray's overhead per image (1 worker vs in-process), the per-stage seconds summed
over workers, and each worker's peak resident memory.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "isic-train"


def val_photos(limit: int) -> list[Path]:
    with open(DATA / "splits.csv", newline="") as f:
        ids = [row["id"] for row in csv.DictReader(f) if row["split"] == "val"]
    return [DATA / f"{i}.jpg" for i in ids[:limit]]


def twelve_mp(sources: list[Path], count: int, folder: Path) -> list[Path]:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        big = cv2.resize(cv2.imread(str(sources[i % len(sources)])), (4000, 3000), interpolation=cv2.INTER_CUBIC)
        made.append(folder / f"big_{i:03d}.jpg")
        cv2.imwrite(str(made[-1]), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return made


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def link_folder(photos: list[Path], folder: Path) -> Path:
    """A folder holding just these photos (symbolic links), as analyze takes folders."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in photos:
        target = folder / p.name
        if not target.exists():
            target.symlink_to(p.resolve())
    return folder


def in_process(model_dir: Path, photos: list[Path], out: Path) -> dict:
    import torch

    from lesionviewer.analyze_cli import analyse_image, result_files, write_result
    from lesionviewer.engine.pipeline import Analyzer
    from lesionviewer.io.images import load_image

    torch.set_num_threads(1)
    analyzer = Analyzer.from_dir(model_dir, device="cpu")
    settings = analyzer.resolve(None)
    stage = {"read": 0.0, "analyse": 0.0, "encode": 0.0, "write": 0.0}
    started = time.perf_counter()
    for path in photos:
        t0 = time.perf_counter()
        rgb = load_image(path).rgb
        t1 = time.perf_counter()
        result, record = analyse_image(analyzer, settings, rgb, path, path.stem, 0)
        t2 = time.perf_counter()
        files = result_files(result, record)
        t3 = time.perf_counter()
        write_result(out, path.stem, files)
        t4 = time.perf_counter()
        for key, a, b in (("read", t0, t1), ("analyse", t1, t2), ("encode", t2, t3), ("write", t3, t4)):
            stage[key] += b - a
    seconds = time.perf_counter() - started
    written = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"images_per_second": len(photos) / seconds, "seconds": seconds, "stages": stage,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "input_mb": sum(p.stat().st_size for p in photos) / len(photos) / 1e6,
            "output_mb": written / len(photos) / 1e6}


def on_ray(ray, model_dir: Path, folder: Path, out: Path, workers: int) -> dict:
    from lesionviewer.cluster.driver import execute, make_plan, pipeline
    from lesionviewer.cluster.writer import FolderWriter

    args = argparse.Namespace(paths=[str(folder)], out=str(out), model=str(model_dir), device="cpu", samples=None,
                              timesteps=None, method=None, seed=0, no_crf=False, threshold=0.5, ray="benchmark",
                              workers=workers, cpus_per_worker=1, gpus_per_worker=0, batch_size=1)
    plan = make_plan(args)
    execute(pipeline(ray, plan, args, workers), plan, args, workers, FolderWriter(out))
    import json

    summary = json.loads((out / "lesionviewer-summary.json").read_bytes())
    return {"images_per_second": summary["images_per_second"], "seconds": summary["seconds"]["pipeline"],
            "stages": {k.split(" ")[0]: v for k, v in summary["seconds"].items() if "sum over" in k or k == "write"},
            "peak_mb": max(summary["worker_peak_mb"].values(), default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--limit", type=int, default=382, help="val photos to use (382 = all)")
    parser.add_argument("--mp12", type=int, default=8, help="12 MP photos to make and use (0 = none)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not (DATA / "splits.csv").is_file():
        sys.exit(f"needs {DATA} (the val photos)")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from lesionviewer.engine.checkpoint import find_default_model

    model_dir = args.model or find_default_model()
    work = Path(tempfile.mkdtemp(prefix="lv-ray-bench-"))
    try:
        val = val_photos(args.limit)
        sets = {f"val 256x256 ({len(val)})": val}
        if args.mp12:
            sets[f"12 MP ({args.mp12})"] = twelve_mp(val, args.mp12, work / "mp12")
        results: dict[str, dict[str, dict]] = {name: {} for name in sets}
        for name, photos in sets.items():
            print(f"in-process: {name} ...", file=sys.stderr, flush=True)
            results[name]["in-process"] = in_process(model_dir, photos, work / f"out-inprocess-{slug(name)}")
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=max(args.workers), include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        print(f"ray.init (local, {max(args.workers)} CPUs): {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for name, photos in sets.items():
            folder = link_folder(photos, work / f"in-{slug(name)}")
            for w in args.workers:
                print(f"ray {w} worker(s): {name} ...", file=sys.stderr, flush=True)
                out = work / f"out-ray{w}-{slug(name)}"
                results[name][f"ray {w} worker(s)"] = on_ray(ray, model_dir, folder, out, w)
        ray.shutdown()
        report(results, model_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict, model_dir: Path) -> None:
    print(f"\nmodel {model_dir.name}, CPU only, os.cpu_count()={os.cpu_count()}, load average "
          f"{os.getloadavg()[0]:.1f} (a shared machine: figures are indicative)\n")
    configs = list(next(iter(results.values())))
    print(f"{'photos':22s}" + "".join(f"{c:>22s}" for c in configs))
    for name, row in results.items():
        print(f"{name:22s}" + "".join(f"{row[c]['images_per_second']:>16.2f} img/s" for c in configs))
    print("\nper-stage seconds per image (read = hash + decode; summed over workers)")
    for name, row in results.items():
        for c in configs:
            n = int(name.split("(")[1].rstrip(")"))
            stages = ", ".join(f"{k} {v / n:.3f}" for k, v in row[c]["stages"].items())
            print(f"  {name:20s} {c:18s} {stages}")
    print("\nRay's overhead per image, 1 worker vs in-process (includes the actor's start-up and model load)")
    for name, row in results.items():
        n = int(name.split("(")[1].rstrip(")"))
        if "ray 1 worker(s)" in row:
            extra = (row["ray 1 worker(s)"]["seconds"] - row["in-process"]["seconds"]) / n
            print(f"  {name:20s} {1000 * extra:+.0f} ms")
    print("\nbytes per image (what a shared file system and the driver carry)")
    for name, row in results.items():
        print(f"  {name:20s} photo {row['in-process']['input_mb']:.2f} MB, results {row['in-process']['output_mb']:.2f} MB")
    print("\npeak resident memory (MB): in-process = the whole benchmark process so far; ray = the largest worker")
    for name, row in results.items():
        print(f"  {name:20s} " + ", ".join(f"{c} {row[c]['peak_mb']:.0f}" for c in configs))


if __name__ == "__main__":
    main()
