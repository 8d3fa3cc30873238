"""The pipeline's stages as plain functions and one plain class (no Ray import): Ray Data runs
:class:`AnalyzeActor` in an actor pool; each call reads, hashes and decodes its photos with
:func:`read_photos`, then analyses and encodes them. Tests can call both directly.

A batch is a dict of equal-length columns (numpy object arrays or lists). Rows from the driver
carry ``path``, ``case_id``, ``previous_sha256`` and ``previous_device`` (see
:mod:`lesionviewer.cluster.resume`); rows back to the driver carry the encoded result files
(plain bytes columns), never pixels.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import numpy as np

from lesionviewer.analyze_cli import analyse_image, result_files
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.images import ImageLoadError, load_image

ANALYSED, UNCHANGED, SKIPPED, FAILED = "analysed", "unchanged", "skipped", "failed"
OUTPUT_COLUMNS = ("case_id", "path", "status", "error", "consensus_png", "variance_png", "record_json",
                  "seconds_read", "seconds_analyse", "seconds_encode", "worker_pid", "worker_peak_mb")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_photos(batch: dict) -> dict:
    """Hash and decode each photo with the io layer. A photo whose hash matches its earlier
    result set is not decoded (status ``unchanged``); one that cannot be read gets status
    ``failed`` and its one-line reason, and the batch goes on."""
    n = len(batch["path"])
    out = {key: list(batch[key]) for key in ("path", "case_id", "previous_sha256", "previous_device")}
    out.update(status=[""] * n, error=[""] * n, sha256=[""] * n, rgb=[None] * n, seconds_read=[0.0] * n)
    for i in range(n):
        started = time.perf_counter()
        path = Path(str(batch["path"][i]))
        try:
            out["sha256"][i] = content_hash(path)
            if out["sha256"][i] == str(batch["previous_sha256"][i]):
                out["status"][i] = UNCHANGED
            else:
                out["rgb"][i] = load_image(path).rgb
                out["status"][i] = ANALYSED
        except (ImageLoadError, OSError) as e:
            out["status"][i], out["error"][i] = FAILED, f"{path}: {_one_line(e)}"
        out["seconds_read"][i] = time.perf_counter() - started
    return out


class AnalyzeActor:
    """One Analyzer per actor: the model is loaded once, then every batch is analysed with the
    same settings and seed as the single-process ``analyze``, and encoded by the same
    functions, so the bytes written are the same."""

    def __init__(self, model_dir: str, device: str, settings, seed: int, threads: int):
        import torch

        from lesionviewer.engine.pipeline import Analyzer

        torch.set_num_threads(max(1, int(threads)))
        self.analyzer = Analyzer.from_dir(model_dir, device=device)
        self.settings = self.analyzer.resolve(settings)
        self.seed = seed

    def __call__(self, batch: dict) -> dict:
        batch = read_photos(batch)
        n = len(batch["path"])
        out = {key: [None] * n for key in OUTPUT_COLUMNS}
        for i in range(n):
            path, status = Path(str(batch["path"][i])), str(batch["status"][i])
            case_id = str(batch["case_id"][i])
            row = dict(case_id=case_id, path=str(path), status=status, error=str(batch["error"][i]),
                       consensus_png=b"", variance_png=b"", record_json=b"",
                       seconds_read=float(batch["seconds_read"][i]), seconds_analyse=0.0,
                       seconds_encode=0.0, worker_pid=os.getpid(), worker_peak_mb=0.0)
            if status == UNCHANGED and str(batch["previous_device"][i]) == self.settings.device:
                row["status"] = SKIPPED
            elif status != FAILED:
                try:
                    row.update(self._analyse(batch, i, path, case_id))
                except Exception as e:  # one odd image must not stop the archive
                    row["status"], row["error"] = FAILED, f"{path}: {type(e).__name__}: {_one_line(e)}"
            row["worker_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
            for key in OUTPUT_COLUMNS:
                out[key][i] = row[key]
        return {key: np.array(values, dtype=object) for key, values in out.items()}

    def _analyse(self, batch: dict, i: int, path: Path, case_id: str) -> dict:
        started = time.perf_counter()
        if batch["status"][i] == UNCHANGED:  # made on another device: decode it here
            rgb = load_image(path).rgb
        else:
            rgb = batch["rgb"][i]
        result, record = analyse_image(self.analyzer, self.settings, rgb, path, case_id, self.seed,
                                       content_sha256=str(batch["sha256"][i]) or None)
        encoding = time.perf_counter()
        consensus, variance, record_json = (data for _, data in result_files(result, record))
        return dict(status=ANALYSED, consensus_png=consensus, variance_png=variance, record_json=record_json,
                    seconds_analyse=encoding - started, seconds_encode=time.perf_counter() - encoding)
