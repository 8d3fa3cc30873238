"""On-disk cache of analyses, so reopening a photo shows its result without re-running the model.

An entry is ``<key>.npz`` (the maps) plus ``<key>.json`` (the scalars). The JSON is written
last and marks the entry complete. The maps are stored fast rather than small (a 50 MP entry
took 3.9 s to write and 5.0 s to read with ``savez_compressed``): the sample masks as bits
under level-1 zlib, and each map that is a function of the samples' vote count (as the
engine's consensus, variance and entropy are) as its table of N + 1 values, checked exactly
on writing; any other map is stored whole under level-1 zlib. Lossless either way. Entries
are dropped least recently used first when the cache grows beyond its byte budget. A damaged
entry is a miss, never a crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lesionviewer.engine.analysis import Analysis, SkinTone
from lesionviewer.io.atomic import atomic_write_bytes, to_json_ready, write_json_atomic

log = logging.getLogger(__name__)

# 2: the malignancy range, OOD score/flag, withheld reason and GED level (older entries lack
# them, and a reopened OOD photo would show its malignancy figure): a new version misses them.
# 3: maps as vote-count tables / level-1 zlib instead of savez_compressed (fast at 50 MP)
CACHE_FORMAT_VERSION = 3
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
                samples, maps = _decode_maps({name: arrays[name] for name in arrays.files},
                                             meta["maps"], meta["sample_shape"])
            analysis = Analysis(
                consensus_probability=maps["consensus_probability"],
                consensus_mask=maps["consensus_mask"],
                variance=maps["variance"],
                entropy=maps["entropy"],
                sample_masks=samples,
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
        arrays, maps_meta = _encode_maps(samples, analysis)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # members stored as they are: the big ones are zlib'd
        meta = {
            "format": CACHE_FORMAT_VERSION,
            "sample_shape": list(samples.shape),
            "maps": maps_meta,
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


def _zipped(array: np.ndarray) -> np.ndarray:
    """Level-1 zlib of the array's bytes, as a uint8 array (zlib releases the GIL meanwhile)."""
    return np.frombuffer(zlib.compress(np.ascontiguousarray(array).data, 1), np.uint8)


def _vote_count(samples: np.ndarray) -> np.ndarray:
    """HxW: how many of the N sample masks mark each pixel (uint8 when N < 256)."""
    dtype = np.uint8 if len(samples) < 256 else np.uint16
    return np.add.reduce(samples.view(np.uint8), axis=0, dtype=dtype)


def _look_up(table: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """``table[votes]``; through OpenCV's LUT (many times faster at 50 MP) where it applies."""
    if votes.dtype == np.uint8 and table.dtype in (np.float32, np.uint8, np.bool_):
        lut = np.zeros(256, np.uint8 if table.dtype == np.bool_ else table.dtype)
        lut[:len(table)] = table
        out = cv2.LUT(votes, lut)
        return out.view(bool) if table.dtype == np.bool_ else out
    return table[votes]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b)) or (a.dtype.kind == "f" and np.array_equal(a, b, equal_nan=True))


def _encode_maps(samples: np.ndarray, analysis: Analysis) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of one entry and, per map, how it is stored ("table" or "zlib")."""
    arrays = {"sample_masks_z": _zipped(np.packbits(samples, axis=None))}
    votes = _vote_count(samples)
    flat_votes = votes.reshape(-1)
    first = {}  # a pixel with each vote count present
    for k in range(len(samples) + 1):
        i = int(np.argmax(flat_votes == k))
        if flat_votes[i] == k:
            first[k] = i
    how: dict[str, dict] = {}
    for name in _MAPS:
        values = np.asarray(getattr(analysis, name))
        if name == "consensus_mask":
            values = values.astype(bool, copy=False)
        if values.shape == votes.shape:
            table = np.zeros(len(samples) + 1, values.dtype)
            flat = values.reshape(-1)
            for k, i in first.items():
                table[k] = flat[i]
            if _same(_look_up(table, votes), values):  # the map is a function of the votes
                arrays[f"{name}_table"] = table
                how[name] = {"stored": "table"}
                continue
        arrays[f"{name}_z"] = _zipped(values)
        how[name] = {"stored": "zlib", "dtype": values.dtype.str, "shape": list(values.shape)}
    return arrays, how


def _decode_maps(arrays: dict[str, np.ndarray], how: dict, sample_shape
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    n, height, width = (int(v) for v in sample_shape)
    bits = np.frombuffer(zlib.decompress(arrays["sample_masks_z"].tobytes()), np.uint8)
    samples = np.unpackbits(bits, count=n * height * width).view(bool).reshape(n, height, width)
    votes = None
    maps = {}
    for name in _MAPS:
        if how[name]["stored"] == "table":
            if votes is None:
                votes = _vote_count(samples)
            maps[name] = _look_up(arrays[f"{name}_table"], votes)
        else:
            raw = zlib.decompress(arrays[f"{name}_z"].tobytes())
            maps[name] = np.frombuffer(raw, np.dtype(how[name]["dtype"])).reshape(
                how[name]["shape"]).copy()
    return samples, maps


def _float_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)
