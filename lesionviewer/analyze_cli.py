"""`lesionviewer analyze PATH... --out DIR`: batch analysis without the GUI.

Per image: ``<id>_consensus.png`` (uint8 0/255, the input's size), ``<id>_variance.png``
(16-bit, variance x 4 scaled to 0..65535, since binary-sample variance is at most 0.25) and
``<id>_analysis.json``. A reference ``<id>_mask.png`` beside an image adds its Dice and GED.

``<id>`` mirrors the photo's folders under the common parent of the inputs (one folder gives
``sub/name``; ``day1 day2`` give ``day1/case`` and ``day2/case``); photos that would still
share an id get their suffix added (:func:`lesionviewer.io.naming.output_ids`), so no result
replaces another within a run. Each image's three files are written together or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lesionviewer import __version__
from lesionviewer.engine import AnalysisSettings, Method
from lesionviewer.engine.checkpoint import ModelError, find_default_model
from lesionviewer.engine.uncertainty import ged
from lesionviewer.io.export import VARIANCE_SCALE, json_bytes, map_png16, mask_png
from lesionviewer.io.fileset import FileSet
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.images import ImageLoadError, find_images, load_image, load_mask, reference_mask_for
from lesionviewer.io.naming import output_ids, unique_photos


# This command's own results, so that `--out` beside the photos does not feed them back in
# (find_images already skips *_variance and masks).
OWN_OUTPUT_ENDINGS = ("_consensus",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the results")
    p.add_argument("--model", help="model folder (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--samples", type=int, help="number of sample masks (timesteps)")
    p.add_argument("--timesteps", type=int, nargs=2, metavar=("FIRST", "LAST"), help="timestep range")
    p.add_argument("--method", choices=[m.value for m in Method], help="default: the model's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-crf", action="store_true", help="skip DenseCRF refinement")
    p.add_argument("--threshold", type=float, help="consensus probability for lesion (default: the model's)")
    cluster = p.add_argument_group("on a Ray cluster (needs the 'cluster' extra; see docs/cluster.md)")
    cluster.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                         help="analyse on Ray: 'auto', 'ray://host:port', or none for a local cluster; "
                              "re-runs skip photos whose results are current")
    cluster.add_argument("--workers", type=int, help="analysers in the actor pool (default: one per CPU or GPU)")
    cluster.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs (torch threads) per analyser")
    cluster.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per analyser")
    cluster.add_argument("--batch-size", type=int, default=4, help="photos per Ray task")


def collect(paths: list[str]) -> tuple[list[tuple[Path, str]], list[str]]:
    """(image path, output id) pairs, and one message per path that does not exist or folder
    that could not be read. Ids are distinct within the run (see the module text)."""
    found: list[tuple[Path, Path]] = []  # (photo, the folder it was found in)
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += [(f, path) for f in find_images(path, problems=problems)
                      if not f.stem.lower().endswith(OWN_OUTPUT_ENDINGS)]
        elif os.path.lexists(path):  # a file, or something load_image refuses in one line
            found.append((path, path.parent))
        else:
            problems.append(f"{raw}: no such file or folder")
    found = unique_photos(found)
    return list(zip([p for p, _ in found], output_ids(found))), problems


class ResultWriteError(Exception):
    """An image's results could not be written; none of its files were left behind."""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def run(args: argparse.Namespace) -> int:
    if getattr(args, "ray", None):
        from lesionviewer import cluster  # Ray only on request: the default path never imports it

        return cluster.run(args)
    from lesionviewer.engine.pipeline import Analyzer

    try:
        model_dir = Path(args.model) if args.model else find_default_model()
        analyzer = Analyzer.from_dir(model_dir, device=args.device)
        settings = analyzer.resolve(AnalysisSettings(
            samples=args.samples, timestep_range=tuple(args.timesteps) if args.timesteps else None,
            crf=False if args.no_crf else None, method=Method(args.method) if args.method else None,
            threshold=args.threshold))
    except (ModelError, ValueError) as e:
        print(f"lesionviewer analyze: {e}", file=sys.stderr)
        return 2
    cases, failures = collect(args.paths)
    for message in failures:
        print(f"lesionviewer analyze: {one_line(message)}", file=sys.stderr)
    if not cases:
        print("lesionviewer analyze: no images found", file=sys.stderr)
        return 1
    out = Path(args.out)
    print(f"{len(cases)} image(s), model {analyzer.model_id} on {analyzer.device}", file=sys.stderr)
    failed = 0
    with tqdm(cases, desc="analyze", unit="image", file=sys.stderr, dynamic_ncols=True) as bar:
        for path, case_id in bar:
            bar.set_postfix_str(case_id[-30:])
            try:
                analyse_one(analyzer, settings, path, case_id, out, args.seed)
            except (ImageLoadError, ResultWriteError, OSError, ValueError) as e:
                reason = str(e)
            except Exception as e:  # one odd image must not stop the batch with a traceback
                reason = f"unexpected error: {type(e).__name__}: {e}"
            else:
                continue
            failures.append(reason)
            failed += 1
            tqdm.write(f"lesionviewer analyze: {path}: {one_line(reason)}", file=sys.stderr)
    print(f"{len(cases) - failed} of {len(cases)} image(s) analysed into {out}", file=sys.stderr)
    return 1 if failures else 0


def analyse_one(analyzer, settings, path: Path, case_id: str, out: Path, seed: int) -> dict:
    image = load_image(path)
    result, record = analyse_image(analyzer, settings, image.rgb, path, case_id, seed)
    write_result(out, case_id, result_files(result, record))
    return record


def analyse_image(analyzer, settings, rgb: np.ndarray, path: Path, case_id: str, seed: int,
                  content_sha256: str | None = None):
    """(Analysis, JSON record) for one decoded photo (HxWx3 uint8 RGB) read from ``path``.

    The record names the photo's content hash beside the model id, settings and seed, so a
    later run can tell that these results are still the ones it would compute
    (``lesionviewer analyze --ray`` skips such photos)."""
    started = time.perf_counter()
    result = analyzer.analyze(rgb, settings, seed=seed)
    record = {"id": case_id, "source": path.name, "content_sha256": content_sha256 or content_hash(path),
              "app_version": __version__, **result.report()}
    reference_path = reference_mask_for(path)
    if reference_path is not None:
        reference = load_mask(reference_path, shape=result.consensus_mask.shape)
        record["reference"] = {
            "mask": reference_path.name,
            "dice": round(dice(result.consensus_mask, reference), 4),
            "ged": round(ged(result.sample_masks, reference), 4),
        }
    record["seconds"]["wall"] = round(time.perf_counter() - started, 4)
    return result, record


RESULT_SUFFIXES = ("_consensus.png", "_variance.png", "_analysis.json")  # the JSON record last


def result_files(result, record: dict) -> list[tuple[str, bytes]]:
    """(suffix, encoded bytes) of one image's results, in :data:`RESULT_SUFFIXES` order."""
    return list(zip(RESULT_SUFFIXES, (mask_png(result.consensus_mask),
                                      map_png16(result.variance, VARIANCE_SCALE), json_bytes(record))))


def write_result(out: Path, case_id: str, files: list[tuple[str, bytes]]) -> None:
    """Write one image's encoded results under ``out/<case_id><suffix>``: all or none."""
    target = out / case_id
    try:
        with FileSet() as fileset:  # all three or none (a full disk, a read-only folder)
            for suffix, data in files:
                fileset.write(target.with_name(target.name + suffix), data)
    except OSError as exc:
        raise ResultWriteError(f"could not write its results into '{out}': "
                               f"{exc.strerror or exc}; nothing was kept for it") from exc
