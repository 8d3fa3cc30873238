"""Which photos a re-run may skip: those whose results already exist for the same content,
model and settings.

The driver reads each photo's earlier ``<id>_analysis.json`` (small, cheap) and keeps its
content hash only when the model id, seed and settings (all but the device) match this run;
the worker that reads the photo hashes it anyway, and skips the analysis when the hashes
agree and it would run on the same device. A set whose PNGs are missing is never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from lesionviewer.analyze_cli import RESULT_SUFFIXES


def settings_key(settings: dict) -> dict:
    """The settings that decide an image's results, without the device (resolved per worker)."""
    return {k: v for k, v in settings.items() if k != "device"}


def previous_result(out: Path, case_id: str, model_id: str, settings: dict, seed: int) -> tuple[str, str]:
    """(content hash, device) recorded by an earlier complete result set of ``case_id`` made with
    this model, seed and settings; ("", "") when there is none or it was made differently."""
    target = out / case_id
    files = [target.with_name(target.name + suffix) for suffix in RESULT_SUFFIXES]
    if not all(f.is_file() for f in files):
        return "", ""
    try:
        record = json.loads(files[-1].read_bytes())
        same = (record.get("model_id") == model_id and record.get("seed") == seed
                and settings_key(record.get("settings") or {}) == settings_key(settings))
        if not same:
            return "", ""
        return str(record.get("content_sha256") or ""), str(record["settings"].get("device") or "")
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return "", ""  # unreadable or hand-edited: analyse it again
