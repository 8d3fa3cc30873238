"""On-disk cache of analyses, so reopening a photo shows its result without re-running the model.

An entry is ``<key>.npz`` (the maps, compressed) plus ``<key>.json`` (the scalars). The JSON is
written last and marks the entry complete. Entries are dropped least recently used first when
the cache grows beyond its byte budget. A damaged entry is a miss, never a crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from lesionviewer.engine.analysis import Analysis, SkinTone
from lesionviewer.io.atomic import atomic_write_bytes, to_json_ready, write_json_atomic

log = logging.getLogger(__name__)

# 2: the malignancy range, OOD score/flag, withheld reason and GED level (older entries lack
# them, and a reopened OOD photo would show its malignancy figure): a new version misses them.
CACHE_FORMAT_VERSION = 2
DEFAULT_MAX_BYTES = 2 * 1024**3
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MAPS = ("consensus_probability", "consensus_mask", "variance", "entropy")
_TRUST_FIELDS = ("malignancy_range", "ood_score", "ood", "malignancy_withheld", "ged_level")


def cache_key(
    content_hash: str,
    model_id: str,
    settings: dict[str, Any] | None,
    region: tuple[int, int, int, int] | None = None,
    seed: int = 0,
) -> str:
    """SHA-256 hex naming one analysis: photo bytes, model, settings (key order ignored),
    region (x, y, w, h) or None, and seed. ``settings`` is ``AnalysisSettings.to_dict()`` or
    the resolved ``Analysis.settings``; pass the same kind on put and get."""
    material = {
        "content_hash": content_hash,
        "model_id": model_id,
        "settings": to_json_ready(settings or {}),
        "region": list(region) if region is not None else None,
        "seed": int(seed),
        "format": CACHE_FORMAT_VERSION,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AnalysisCache:
    """Analyses on disk under ``directory``, at most ``max_bytes`` in total (LRU eviction).

    Safe for one writer at a time per key; readers never see a half-written entry.
    """

    def __init__(self, directory: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)

    key = staticmethod(cache_key)

    def get(self, key: str) -> Analysis | None:
        """The cached analysis, or None on a miss or a damaged entry (which is removed)."""
        json_path, npz_path = self._paths(key)
        if not json_path.is_file():
            return None
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
            if meta.get("format") != CACHE_FORMAT_VERSION:
                raise ValueError("written by another cache format")
            with np.load(npz_path, allow_pickle=False) as arrays:
                maps = {name: arrays[name] for name in _MAPS}
                n, height, width = (int(v) for v in meta["sample_shape"])
                packed = arrays["sample_masks_packed"]
            samples = np.unpackbits(packed, count=n * height * width).astype(bool)
            analysis = Analysis(
                consensus_probability=maps["consensus_probability"],
                consensus_mask=maps["consensus_mask"].astype(bool),
                variance=maps["variance"],
                entropy=maps["entropy"],
                sample_masks=samples.reshape(n, height, width),
                timesteps=tuple(int(t) for t in meta["timesteps"]),
                ged=float(meta["ged"]),
                malignancy_probability=meta["malignancy_probability"],
                skin_tone=SkinTone(
                    ita_degrees=_float_or_nan(meta["skin_tone"]["ita_degrees"]),
                    group=str(meta["skin_tone"]["group"]),
                    skin_pixels=int(meta["skin_tone"]["skin_pixels"]),
                ),
                model_id=str(meta["model_id"]),
                device=str(meta["device"]),
                settings=dict(meta["settings"]),
                timings={k: float(v) for k, v in meta["timings"].items()},
                region=tuple(meta["region"]) if meta["region"] is not None else None,
                seed=int(meta["seed"]),
                malignancy_range=None if meta["malignancy_range"] is None
                else (float(meta["malignancy_range"][0]), float(meta["malignancy_range"][1])),
                ood_score=None if meta["ood_score"] is None else float(meta["ood_score"]),
                ood=None if meta["ood"] is None else bool(meta["ood"]),
                malignancy_withheld=meta["malignancy_withheld"],
                ged_level=meta["ged_level"],
            )
        except Exception as exc:  # any damage (truncated zip, bad JSON, missing array) is a miss
            log.warning("dropping damaged cache entry %s: %s", key[:12], exc)
            self._remove(key)
            return None
        for path in (json_path, npz_path):  # mark as most recently used
            try:
                os.utime(path)
            except OSError:
                pass
        return analysis

    def put(self, key: str, analysis: Analysis) -> None:
        """Store ``analysis`` under ``key`` (replacing any), then evict beyond ``max_bytes``.

        A full disk or a read-only cache folder is logged, not raised: caching is optional.
        """
        json_path, npz_path = self._paths(key)
        samples = np.asarray(analysis.sample_masks, dtype=bool)
        summary = analysis.summary()  # JSON-ready (NaN -> null)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            consensus_probability=np.asarray(analysis.consensus_probability),
            consensus_mask=np.asarray(analysis.consensus_mask, dtype=bool),
            variance=np.asarray(analysis.variance),
            entropy=np.asarray(analysis.entropy),
            sample_masks_packed=np.packbits(samples, axis=None),
        )
        meta = {
            "format": CACHE_FORMAT_VERSION,
            "sample_shape": list(samples.shape),
            "timesteps": list(analysis.timesteps),
            "ged": analysis.ged,
            "malignancy_probability": analysis.malignancy_probability,
            "skin_tone": dataclasses.asdict(analysis.skin_tone),
            "model_id": analysis.model_id,
            "device": analysis.device,
            "settings": analysis.settings,
            "timings": analysis.timings,
            "region": list(analysis.region) if analysis.region is not None else None,
            "seed": analysis.seed,
            **{k: summary[k] for k in _TRUST_FIELDS},
        }
        try:
            json_path.unlink(missing_ok=True)  # the entry is incomplete until the JSON is back
            atomic_write_bytes(npz_path, buffer.getvalue())
            write_json_atomic(json_path, meta)
        except OSError as exc:
            log.warning("could not cache analysis %s: %s", key[:12], exc)
            self._remove(key)
            return
        self.evict()

    def __contains__(self, key: str) -> bool:
        return all(p.is_file() for p in self._paths(key))

    @property
    def nbytes(self) -> int:
        """Bytes the cache's entries take on disk."""
        return sum(size for _, size, _ in self._entries())

    def evict(self, max_bytes: int | None = None) -> None:
        """Remove least recently used entries until at most ``max_bytes`` (default: the budget)."""
        budget = self.max_bytes if max_bytes is None else int(max_bytes)
        entries = sorted(self._entries(), key=lambda e: e[2])  # oldest use first
        total = sum(size for _, size, _ in entries)
        for key, size, _ in entries:
            if total <= budget:
                break
            self._remove(key)
            total -= size

    def clear(self) -> None:
        self.evict(0)

    def _entries(self) -> list[tuple[str, int, float]]:
        """(key, bytes, last use) for every entry, complete or not."""
        found: dict[str, list[float]] = {}
        for path in self.directory.iterdir():
            if path.suffix not in (".npz", ".json") or path.name.startswith("."):
                continue
            try:
                info = path.stat()
            except OSError:
                continue
            size_and_time = found.setdefault(path.stem, [0, 0.0])
            size_and_time[0] += info.st_size
            size_and_time[1] = max(size_and_time[1], info.st_mtime)
        return [(key, int(size), when) for key, (size, when) in found.items()]

    def _paths(self, key: str) -> tuple[Path, Path]:
        if not _KEY_PATTERN.fullmatch(key or ""):
            raise ValueError(f"not a cache key: {key!r} (use AnalysisCache.key(...))")
        return self.directory / f"{key}.json", self.directory / f"{key}.npz"

    def _remove(self, key: str) -> None:
        for path in self._paths(key):
            try:
                path.unlink()
            except OSError:
                pass


def _float_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)
