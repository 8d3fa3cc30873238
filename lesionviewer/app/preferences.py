"""The user's preferences and recent files, stored as JSON in the config folder.

Qt-free on purpose: the settings dialog edits an :class:`AppSettings`, the rest of the app
reads it, and a broken or old file falls back to defaults field by field.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from lesionviewer.engine.analysis import AnalysisSettings, Method

log = logging.getLogger(__name__)

MAX_RECENT = 12
OVERLAYS = ("mask", "contour", "variance", "samples", "reference")
# Outline only by default: a fill hides the pigment network the reviewer needs to see.
DEFAULT_VISIBLE = {"mask": False, "contour": True, "variance": False, "samples": False,
                   "reference": True}
DEFAULT_OPACITY = {"mask": 0.35, "contour": 1.0, "variance": 0.6, "samples": 1.0,
                   "reference": 1.0}
SETTINGS_VERSION = 2
# Version 1's defaults (cyan / magenta / green, mask fill on): a file still holding one of them
# never chose it, so it takes the new default (see AppSettings.from_dict).
_V1_DEFAULTS = {"mask_colour": "#00e5ff", "contour_colour": "#00ffff",
                "sample_colour": "#ff40ff", "reference_colour": "#33ff33",
                "region_colour": "#ff9900"}


@dataclasses.dataclass
class AppSettings:
    """Everything the settings dialog shows. ``None`` analysis fields mean "the model's default"."""

    samples: int | None = None
    timestep_first: int | None = None
    timestep_last: int | None = None
    crf: bool | None = None
    method: str | None = None  # Method value, e.g. "diffseg"
    device: str = "auto"
    # no threshold here: it is chosen per case (Case.threshold, saved in its sidecar)
    analyse_folder_in_background: bool = True
    # overlay colours as "#rrggbb" (Okabe-Ito, see overlays.py; none is yellow, the top of the
    # variance colour map); the variance colormap is a pyqtgraph/matplotlib name
    mask_colour: str = "#56b4e9"  # sky blue, like the outline it fills
    contour_colour: str = "#56b4e9"  # sky blue, solid
    sample_colour: str = "#009e73"  # bluish green, thin
    reference_colour: str = "#e69f00"  # orange, dashed
    region_colour: str = "#cc79a7"  # reddish purple, dashed box
    variance_colormap: str = "viridis"
    isic_naming: bool = False
    export_dir: str = ""  # last export folder
    # overlay name ("mask", "contour", "variance", "samples", "reference") -> shown / opacity
    overlay_visible: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_VISIBLE))
    overlay_opacity: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_OPACITY))
    settings_version: int = SETTINGS_VERSION
    # QMainWindow.saveGeometry() / saveState() (docks), base64; "" = the default layout
    window_geometry: str = ""
    window_state: str = ""
    # the case store (issue 9): "" = --db, $LESIONVIEWER_DB or the SQLite file in the data
    # folder; never holds a password (that goes to the keyring, see lesionviewer.store.url)
    db_url: str = ""
    user_name: str = ""  # who is recorded on every store write; "" = the OS login
    # case-list columns the user hid (names from case_list.COLUMNS); None = not chosen yet
    case_list_hidden: list | None = None

    def analysis_settings(self) -> AnalysisSettings:
        """The engine's settings for one analysis (unset fields resolved by the model)."""
        trange = None
        if self.timestep_first is not None and self.timestep_last is not None:
            trange = (int(self.timestep_first), int(self.timestep_last))
        return AnalysisSettings(
            samples=self.samples,
            timestep_range=trange,
            crf=self.crf,
            method=Method(self.method) if self.method else None,
            device=self.device,
        )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "AppSettings":
        if raw.get("settings_version", 1) == 1:
            raw = _from_version_1(raw)
        defaults = cls()
        kept = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                continue
            value, default = raw[f.name], getattr(defaults, f.name)
            if default is not None and value is not None and not isinstance(value, type(default)):
                if isinstance(default, float) and isinstance(value, int):
                    value = float(value)
                else:
                    log.warning("settings: ignoring %s=%r (expected %s)", f.name, value,
                                type(default).__name__)
                    continue
            kept[f.name] = value
        if kept.get("method") not in (None, *[m.value for m in Method]):
            kept.pop("method")
        return cls(**kept)


def _from_version_1(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 1 saved every field, defaults included: drop the old default colours and the
    mask fill that was on by default, so the new defaults apply; the user's own choices stay."""
    raw = {k: v for k, v in raw.items() if _V1_DEFAULTS.get(k) != v}
    visible = raw.get("overlay_visible")
    if isinstance(visible, dict) and visible.get("mask") is True:
        raw["overlay_visible"] = {**visible, "mask": False}
    opacity = raw.get("overlay_opacity")
    if isinstance(opacity, dict) and opacity.get("samples") == 0.8:
        raw["overlay_opacity"] = {**opacity, "samples": DEFAULT_OPACITY["samples"]}
    raw["settings_version"] = SETTINGS_VERSION
    return raw


def _write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        log.warning("could not read %s (%s); using defaults", path, exc)
        return default


def load_settings(config_dir: Path) -> AppSettings:
    raw = _read_json(config_dir / "settings.json", {})
    return AppSettings.from_dict(raw if isinstance(raw, dict) else {})


def save_settings(config_dir: Path, settings: AppSettings) -> None:
    _write_json_atomic(config_dir / "settings.json", dataclasses.asdict(settings))


class RecentPaths:
    """Most-recent-first list of opened files and folders, persisted in recent.json."""

    def __init__(self, config_dir: Path):
        self._path = config_dir / "recent.json"
        raw = _read_json(self._path, [])
        self.paths: list[str] = [p for p in raw if isinstance(p, str)][:MAX_RECENT]

    def add(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        self.paths = [p] + [q for q in self.paths if q != p]
        del self.paths[MAX_RECENT:]
        try:
            _write_json_atomic(self._path, self.paths)
        except OSError as exc:
            log.warning("could not save recent files: %s", exc)

    def existing(self) -> list[str]:
        return [p for p in self.paths if Path(p).exists()]
