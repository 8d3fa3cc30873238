"""Reopening a photo shows its cached analysis; the cache stays within its budget."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from lesionviewer.io.cache import AnalysisCache, cache_key


def _assert_same(a, b):
    for name in ("consensus_probability", "consensus_mask", "variance", "entropy", "sample_masks"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    for name in ("timesteps", "ged", "malignancy_probability", "model_id", "device", "settings",
                 "timings", "region", "seed"):
        assert getattr(a, name) == getattr(b, name), name
    assert (a.skin_tone.group, a.skin_tone.skin_pixels) == (b.skin_tone.group, b.skin_tone.skin_pixels)
    np.testing.assert_equal(a.skin_tone.ita_degrees, b.skin_tone.ita_degrees)  # NaN == NaN here


def test_put_then_get_gives_the_same_analysis(tmp_path, analysis_factory):
    cache = AnalysisCache(tmp_path / "cache")
    analysis = analysis_factory(region=(2, 3, 20, 15), seed=7)
    key = cache_key("ab" * 32, analysis.model_id, analysis.settings, analysis.region, analysis.seed)
    assert cache.get(key) is None and key not in cache
    cache.put(key, analysis)
    assert key in cache
    _assert_same(cache.get(key), analysis)


def test_key_depends_on_everything_that_changes_the_result_but_not_on_dict_order():
    base = dict(content_hash="a" * 64, model_id="m@1", settings={"samples": 4, "crf": True})
    key = cache_key(**base)
    assert key == cache_key("a" * 64, "m@1", {"crf": True, "samples": 4})
    assert key == AnalysisCache.key(**base)
    assert len(key) == 64
    different = [
        cache_key("b" * 64, "m@1", base["settings"]),
        cache_key("a" * 64, "m@2", base["settings"]),
        cache_key("a" * 64, "m@1", {"samples": 5, "crf": True}),
        cache_key(**base, region=(0, 0, 10, 10)),
        cache_key(**base, seed=1),
    ]
    assert len({key, *different}) == 6


def test_nan_skin_tone_and_missing_malignancy_survive(tmp_path, analysis_factory):
    import dataclasses

    from lesionviewer.engine.analysis import SkinTone

    analysis = dataclasses.replace(analysis_factory(), malignancy_probability=None,
                                   skin_tone=SkinTone(float("nan"), "unknown", 0))
    cache = AnalysisCache(tmp_path)
    cache.put("k", analysis)
    back = cache.get("k")
    assert back.malignancy_probability is None
    assert np.isnan(back.skin_tone.ita_degrees) and back.skin_tone.group == "unknown"


@pytest.mark.parametrize("damage", ["truncate_npz", "bad_json", "missing_npz"])
def test_damaged_entry_is_a_miss_and_is_removed(tmp_path, analysis_factory, caplog, damage):
    cache = AnalysisCache(tmp_path)
    cache.put("k", analysis_factory())
    npz, js = tmp_path / "k.npz", tmp_path / "k.json"
    if damage == "truncate_npz":
        npz.write_bytes(npz.read_bytes()[:100])
    elif damage == "bad_json":
        js.write_text("{not json")
    else:
        npz.unlink()
    with caplog.at_level(logging.WARNING):
        assert cache.get("k") is None
    assert "damaged" in caplog.text
    assert not npz.exists() and not js.exists()


def test_eviction_drops_least_recently_used_beyond_the_budget(tmp_path, analysis_factory):
    cache = AnalysisCache(tmp_path, max_bytes=10**9)
    for i in range(4):
        cache.put(f"k{i}", analysis_factory(64, 64, samples=8, seed=i))
        for suffix in (".npz", ".json"):  # distinct, increasing use times
            os.utime(tmp_path / f"k{i}{suffix}", (1000 + i, 1000 + i))
    entry = cache.nbytes // 4
    cache.get("k0")  # used just now: most recent
    cache.max_bytes = int(entry * 2.5)
    cache.put("k4", analysis_factory(64, 64, samples=8, seed=4))
    assert cache.nbytes <= cache.max_bytes
    assert "k4" in cache and "k0" in cache
    assert "k1" not in cache and "k2" not in cache


def test_cache_folder_that_cannot_be_written_is_not_fatal(tmp_path, analysis_factory, monkeypatch, caplog):
    cache = AnalysisCache(tmp_path)
    from lesionviewer.io import cache as cache_module

    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module, "atomic_write_bytes", full_disk)
    with caplog.at_level(logging.WARNING):
        cache.put("k", analysis_factory())
    assert cache.get("k") is None and "could not cache" in caplog.text


def test_keys_cannot_name_paths(tmp_path):
    with pytest.raises(ValueError):
        AnalysisCache(tmp_path).get("../escape")


def test_clear_empties_the_cache(tmp_path, analysis_factory):
    cache = AnalysisCache(tmp_path)
    cache.put("a", analysis_factory())
    cache.clear()
    assert cache.nbytes == 0 and cache.get("a") is None


def test_real_engine_result_round_trips_and_exports(tmp_path, tiny_model_dir):
    from lesionviewer.engine import Analyzer
    from lesionviewer.io.export import export_case

    analyzer = Analyzer.from_dir(tiny_model_dir, device="cpu")
    rgb = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    analysis = analyzer.analyze(rgb, seed=3)
    cache = AnalysisCache(tmp_path / "cache")
    key = cache.key("c" * 64, analysis.model_id, analysis.settings, analysis.region, analysis.seed)
    cache.put(key, analysis)
    _assert_same(cache.get(key), analysis)
    paths = export_case(tmp_path / "out", "case", rgb, analysis.consensus_mask, analysis, None)
    assert paths["probability"].is_file() and paths["variance"].is_file()


def test_trust_fields_survive_so_a_reopened_ood_photo_stays_withheld(tmp_path, analysis_factory):
    import dataclasses

    analysis = dataclasses.replace(
        analysis_factory(), malignancy_range=(0.25, 0.6), ood_score=3.5, ood=True,
        malignancy_withheld="photo unlike the dermoscopy images the model was trained on",
        ged_level="medium")
    cache = AnalysisCache(tmp_path)
    cache.put("k", analysis)
    back = cache.get("k")
    for name in ("malignancy_range", "ood_score", "ood", "malignancy_withheld", "ged_level"):
        assert getattr(back, name) == getattr(analysis, name), name
    plain = analysis_factory()  # an analysis without them keeps None
    cache.put("p", plain)
    assert cache.get("p").ood is None and cache.get("p").malignancy_range is None


def test_maps_of_the_vote_count_are_stored_as_tables_and_others_whole(tmp_path, analysis_factory):
    """The engine's consensus, variance and entropy are functions of how many samples voted
    lesion: stored as N + 1 values each (fast at 50 MP). A map that is not (e.g. a CRF run on
    the consensus) is stored whole; both come back exactly."""
    import dataclasses
    import json

    cache = AnalysisCache(tmp_path)
    plain = analysis_factory(120, 160, samples=4)
    cache.put("plain", plain)
    stored = json.loads((tmp_path / "plain.json").read_text())["maps"]
    assert {m["stored"] for m in stored.values()} == {"table"}
    _assert_same(cache.get("plain"), plain)

    rng = np.random.default_rng(1)
    other = dataclasses.replace(
        plain, consensus_probability=rng.random(plain.variance.shape, dtype=np.float32),
        entropy=np.full(plain.variance.shape, np.nan, np.float32))
    cache.put("other", other)
    stored = json.loads((tmp_path / "other.json").read_text())["maps"]
    assert stored["consensus_probability"]["stored"] == "zlib"
    assert stored["variance"]["stored"] == "table"
    _assert_same(cache.get("other"), other)
