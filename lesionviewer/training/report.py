"""The human side of an evaluation: overlay pictures and the Markdown report.

Overlays show the photo with the expert's outline (green) and the consensus outline (magenta),
and next to it the per-pixel sample variance (viridis, 0 = all samples agree, 0.25 = even split).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lesionviewer.io import atomic

REFERENCE_BGR = (0, 200, 0)  # green
PREDICTION_BGR = (255, 0, 255)  # magenta: distinct from green for red-green colour blindness
PANEL_MAX_SIDE = 512
VARIANCE_MAX = 0.25  # variance of a binary sample is at most 0.25


def overlay_panel(
    rgb: np.ndarray, reference: np.ndarray, prediction: np.ndarray, variance: np.ndarray
) -> np.ndarray:
    """Photo with both outlines beside the variance heatmap, as HxWx3 uint8 BGR for cv2.imwrite.

    rgb: HxWx3 uint8 RGB; reference, prediction: HxW bool; variance: HxW float in 0..0.25.
    Downscaled so that each half is at most PANEL_MAX_SIDE pixels on its longer side.
    """
    height, width = reference.shape
    scale = min(1.0, PANEL_MAX_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    photo = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_AREA)
    thickness = max(1, round(max(size) / 256))
    # The reference is drawn wider and first, so where the outlines agree it shows as a green
    # rim on both sides of the magenta line instead of vanishing under it.
    for mask, colour, width in (
        (reference, REFERENCE_BGR, 2 * thickness + 1),
        (prediction, PREDICTION_BGR, thickness),
    ):
        small = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(photo, contours, -1, colour, width)  # no anti-aliasing: exact colours
    level = np.clip(np.asarray(variance, dtype=np.float32) / VARIANCE_MAX, 0.0, 1.0)
    heat = cv2.applyColorMap((level * 255).round().astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    heat = cv2.resize(heat, size, interpolation=cv2.INTER_NEAREST)
    gap = np.full((size[1], 4, 3), 255, dtype=np.uint8)
    return np.concatenate([photo, gap, heat], axis=1)


def safe_name(case_id: str) -> str:
    """A file-name stem for a case id such as ``ham10000-600x450/ISIC_0024311``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id)


class OverlayStore:
    """Keeps one rendered panel per case on disk until the best, median and worst are known.

    Rendering every case costs milliseconds against seconds of analysis, and writing it to a
    temporary folder keeps memory flat however many cases there are.
    """

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="lesionviewer-eval-")
        self._paths: dict[str, Path] = {}

    def add(self, case_id: str, panel_bgr: np.ndarray) -> None:
        path = Path(self._tmp.name) / f"{len(self._paths):06d}.png"
        if not cv2.imwrite(str(path), panel_bgr):
            raise OSError(f"could not write overlay {path}")
        self._paths[case_id] = path

    def export(self, picks: list[tuple[str, str]], folder: Path) -> dict[str, str]:
        """Copy the panels of ``picks`` [(label, case_id)] to ``folder``; returns label -> path."""
        folder.mkdir(parents=True, exist_ok=True)
        for label in ("best", "median", "worst"):  # from an earlier run into the same folder
            for stale in folder.glob(f"{label}_*.png"):
                stale.unlink()
        written = {}
        for label, case_id in picks:
            target = folder / f"{label}_{safe_name(case_id)}.png"
            shutil.copyfile(self._paths[case_id], target)
            written[label] = str(target)
        return written

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> OverlayStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def best_median_worst(per_image: list[dict[str, Any]], key: str = "dice") -> list[tuple[str, str]]:
    """[("best", id), ("median", id), ("worst", id)] by ``key``; ties broken by id."""
    if not per_image:
        return []
    ranked = sorted(per_image, key=lambda row: (-row[key], row["id"]))
    picks = [("best", ranked[0]), ("median", ranked[(len(ranked) - 1) // 2]), ("worst", ranked[-1])]
    return [(label, row["id"]) for label, row in picks]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


AGGREGATE_COLUMNS = [
    ("n", "n"),
    ("dice_mean", "Dice"),
    ("iou_mean", "IoU"),
    ("precision_mean", "Precision"),
    ("recall_mean", "Recall"),
    ("thresholded_jaccard", "Thr. Jaccard"),
    ("hd95_mean", "HD95 (px)"),
    ("ged_mean", "GED"),
    ("uncertainty_error_auroc", "Variance→error AUROC"),
    ("malignancy_auroc", "Malignancy AUROC"),
    ("malignancy_sens_at_90spec", "Sens. @90% spec."),
    ("malignancy_ece", "ECE"),
    ("seconds_per_image", "s/image"),
]


def _row(name: str, figures: dict[str, Any], columns=AGGREGATE_COLUMNS) -> list[str]:
    digits = {"hd95_mean": 1, "seconds_per_image": 2}
    return [name] + [_fmt(figures.get(key), digits.get(key, 3)) for key, _ in columns]


def markdown_report(report: dict[str, Any], overlays: dict[str, str], md_path: Path) -> str:
    """The Markdown text for ``report`` (the evaluation JSON); overlay paths made relative."""
    lines = [
        "# lesionviewer evaluation",
        "",
        f"- Model: `{report['model_id']}` (default method: {report['default_method']})",
        f"- Data: `{report['data']}`, split: {report['split'] or 'all cases'}",
        f"- Cases evaluated: {report['n_cases']}, skipped: {len(report['skipped'])}",
        f"- Settings: {', '.join(f'{k}={v}' for k, v in report['settings'].items())}",
        "",
        "## Results per method",
        "",
    ]
    header = ["Method"] + [title for _, title in AGGREGATE_COLUMNS]
    lines += _table(header, [_row(name, fig) for name, fig in report["methods"].items()])
    lines += ["", "## Results per skin-tone group (ITA of the surrounding skin)", ""]
    rows = []
    for name, figures in report["methods"].items():
        for group, group_figures in figures["per_group"].items():
            rows.append(_row(f"{name} / {group}", group_figures))
    lines += _table(["Method / group"] + header[1:], rows)
    for section in report.get("sections", []):
        lines += section_markdown(section)
    if overlays:
        method = report["overlay_method"]
        lines += [
            "",
            f"## Best, median and worst case of `{method}` by Dice",
            "",
            "Left: photo with the reference outline in green and the consensus outline in "
            "magenta. Right: sample variance (dark = samples agree, yellow = even split).",
            "",
        ]
        dice_by_id = {row["id"]: row["dice"] for row in report["methods"][method]["per_image"]}
        for label, path in overlays.items():
            case_id = report["overlay_cases"][label]
            relative = Path(os.path.relpath(path, md_path.parent)).as_posix()
            lines += [
                f"### {label.capitalize()}: {case_id} (Dice {_fmt(dice_by_id[case_id])})",
                "",
                f"![{label}: {case_id}]({relative})",
                "",
            ]
    if report["skipped"]:
        lines += ["", "## Skipped cases", ""]
        lines += [f"- `{entry['id']}`: {entry['reason']}" for entry in report["skipped"]]
    lines += ["", "## Definitions", ""]
    lines += [f"- **{key}**: {text}" for key, text in report["definitions"].items()]
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class ReportSection:
    """One titled table of an evaluation report, e.g. the uncertainty figures per half of `val`.

    The evaluation writes every section into the JSON (``sections``, a list) and the Markdown
    in order, so a feature adds its figures by adding a section builder
    (:data:`lesionviewer.training.evaluate.SECTION_BUILDERS`), not by editing the report code.
    rows: row label (e.g. "reporting half") -> {figure key: value}; columns: (figure key,
    heading) in table order; notes: sentences printed under the table (definitions, targets).
    """

    key: str
    title: str
    columns: list[tuple[str, str]]
    rows: dict[str, dict[str, Any]]
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "columns": [list(c) for c in self.columns],
                "rows": self.rows, "notes": list(self.notes)}


def section_markdown(section: dict[str, Any]) -> list[str]:
    """Markdown lines of one section as written into the JSON (:meth:`ReportSection.to_dict`)."""
    columns = [tuple(c) for c in section["columns"]]
    lines = ["", f"## {section['title']}", ""]
    lines += _table([""] + [title for _, title in columns],
                    [_row(label, figures, columns) for label, figures in section["rows"].items()])
    if section.get("notes"):
        lines += [""] + [f"- {note}" for note in section["notes"]]
    return lines


json_ready = atomic.to_json_ready  # strict JSON: NaN/inf as null, numpy scalars as Python ones


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` so that a reader never sees half a file, creating the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json_atomic(path, data)
