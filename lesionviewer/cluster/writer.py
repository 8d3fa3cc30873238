"""Where the driver puts each image's results: a small interface, so that the team case store
can take rows too once it exists (a writer per destination, all called for every result).

Also the run's two reports in ``--out``: the failures file (one photo per line, tab, reason)
and the summary JSON (counts, failures, throughput, per-stage seconds).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Protocol

from lesionviewer.analyze_cli import RESULT_SUFFIXES, write_result
from lesionviewer.io.atomic import atomic_write_bytes
from lesionviewer.io.export import json_bytes

FAILURES_FILE = "lesionviewer-failures.tsv"
SUMMARY_FILE = "lesionviewer-summary.json"


class ResultWriter(Protocol):
    def write(self, case_id: str, files: list[tuple[str, bytes]]) -> None:
        """Keep one image's encoded results ((suffix, bytes) in RESULT_SUFFIXES order, the JSON
        record last). Raises ResultWriteError (and keeps nothing of it) when it cannot."""

    def close(self) -> None:
        """Called once after the last result."""


class FolderWriter:
    """The single-process ``analyze`` layout: ``<out>/<id>_consensus.png``, ``_variance.png``,
    ``_analysis.json``, each set written together or not at all."""

    def __init__(self, out: Path):
        self.out = Path(out)

    def write(self, case_id: str, files: list[tuple[str, bytes]]) -> None:
        assert [suffix for suffix, _ in files] == list(RESULT_SUFFIXES)
        write_result(self.out, case_id, files)

    def close(self) -> None:
        pass


def write_failures(out: Path, failures: list[tuple[str, str]]) -> Path:
    """``<out>/lesionviewer-failures.tsv``: header ``path<TAB>reason``, one failed photo a line
    (rewritten by each run, so it lists this run's failures; they are retried next time)."""
    text = io.StringIO()
    table = csv.writer(text, delimiter="\t", lineterminator="\n")
    table.writerow(["path", "reason"])
    table.writerows(failures)
    path = Path(out) / FAILURES_FILE
    atomic_write_bytes(path, text.getvalue().encode("utf-8"))
    return path


def write_summary(out: Path, summary: dict) -> Path:
    path = Path(out) / SUMMARY_FILE
    atomic_write_bytes(path, json_bytes(summary))
    return path
