"""Seconds per image and peak memory of the default analysis on this machine's CPU.

    python benchmarks/analyze_latency.py [--model models/NAME] [--runs 5] [--threads 2]

Without --model it times the configuration `train backbone` + `train heads` produce, with
random weights (timing does not depend on the weights). The input is a real dermoscopy photo
from tests/data resized to each size (--synthetic: random noise with a dark disk, DenseCRF's
worst case, since its lattice grows with the number of distinct colours). Each input size runs
in its own process so that the peak resident memory reported is that size's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = ((256, 256), (4000, 3000))


def shipped_shape_config() -> dict:
    from lesionviewer.engine.defaults import default_model_config

    config = default_model_config(name="benchmark-random-weights")
    config["probe"] = {"blocks": ["dec0", "dec1", "dec2", "dec3"], "include_rgb": True, "feature_size": 48,
                       "hidden": 32, "members": 5, "classes": ["background", "lesion"]}
    config["malignancy"] = {"hidden": 64}
    config["defaults"]["method"] = "fused"
    return config


PHOTO = Path(__file__).resolve().parents[1] / "tests" / "data" / "ISIC_0024311.jpg"


def test_image(width: int, height: int, synthetic: bool):
    import cv2
    import numpy as np

    if not synthetic:
        bgr = cv2.imread(str(PHOTO))
        interpolation = cv2.INTER_CUBIC if width > bgr.shape[1] else cv2.INTER_AREA
        return np.ascontiguousarray(cv2.resize(bgr, (width, height), interpolation=interpolation)[..., ::-1])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    disk = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 4) ** 2
    image[disk] //= 3  # a dark "lesion" so the maps are not flat
    return image


def measure(width: int, height: int, model_dir: str | None, runs: int, threads: int, synthetic: bool,
            method: str | None = None) -> dict:
    import torch
    from lesionviewer.engine.analysis import AnalysisSettings, Method
    from lesionviewer.engine.model import build_model, load_model
    from lesionviewer.engine.pipeline import Analyzer

    torch.set_num_threads(threads)
    model = load_model(model_dir) if model_dir else build_model(shipped_shape_config())
    analyzer = Analyzer(model, device="cpu")
    settings = analyzer.resolve(AnalysisSettings(method=Method(method) if method else None))
    image = test_image(width, height, synthetic)
    analyzer.analyze(image, settings)  # warm-up: first-call allocations and kernel selection
    seconds, cpu, stages = [], [], []
    for seed in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = analyzer.analyze(image, settings, seed=seed)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        stages.append(result.timings)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "input": f"{width}x{height}" + (" noise" if synthetic else ""),
        "model": analyzer.model_id,
        "settings": settings.to_dict(),
        "design": model.config.get("uncertainty"),  # engine.pipeline.SamplingDesign; None = votes
        "threads": threads,
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_min": round(min(seconds), 3),
        "seconds_max": round(max(seconds), 3),
        # CPU seconds of this process: with --threads 1 what a quiet machine's wall clock would
        # read, whatever else shares the CPU (with more threads it adds up over the threads).
        "cpu_seconds_median": round(statistics.median(cpu), 3),
        "stages_median": {k: round(statistics.median(s[k] for s in stages), 3) for k in stages[0]},
        "peak_rss_mb": round(peak_mb, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model folder (default: the shipped shape with random weights)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--synthetic", action="store_true", help="random-noise input instead of a real photo")
    p.add_argument("--method", choices=["diffseg", "probe", "fused"], help="default: the model's")
    p.add_argument("--size", help=argparse.SUPPRESS)  # internal: one size in this process
    args = p.parse_args()
    if args.size:
        w, h = (int(v) for v in args.size.split("x"))
        print(json.dumps(measure(w, h, args.model, args.runs, args.threads, args.synthetic, args.method)))
        return 0
    load_before = os.getloadavg()
    print(f"{'input':>16} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>6} {'peak MB':>8}  stages (median s)")
    for w, h in SIZES:
        cmd = [sys.executable, __file__, "--size", f"{w}x{h}", "--runs", str(args.runs), "--threads", str(args.threads)]
        if args.model:
            cmd += ["--model", args.model]
        if args.synthetic:
            cmd.append("--synthetic")
        if args.method:
            cmd += ["--method", args.method]
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        stages = " ".join(f"{k}={v}" for k, v in row["stages_median"].items())
        print(f"{row['input']:>16} {row['seconds_median']:>9} {row['seconds_min']:>7} {row['seconds_max']:>7} "
              f"{row['cpu_seconds_median']:>6} {row['peak_rss_mb']:>8}  {stages}")
    print(f"model {row['model']}, settings {row['settings']}, design {row['design']}, {args.threads} CPU threads, "
          f"{args.runs} runs each")
    # A CPU shared with other work slows every figure above: the 1-minute load average, before
    # and after, says how shared it was (a quiet 2-core machine reads below 2).
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}, "
          f"on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
