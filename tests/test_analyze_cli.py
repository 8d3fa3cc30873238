"""`lesionviewer analyze`: a folder of photos in, masks, variance maps and JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lesionviewer.cli import main
from lesionviewer.engine import AnalysisSettings, Analyzer, Method
from lesionviewer.engine import checkpoint
from lesionviewer.engine.checkpoint import MODEL_ENV, save_model
from lesionviewer.engine.model import load_model
from lesionviewer.engine.uncertainty import ged
from lesionviewer.io.images import load_image

OUTPUTS = ("_consensus.png", "_variance.png", "_analysis.json")


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory, enliven) -> Path:
    """The tiny model with its zero-initialised layers perturbed, so its masks are neither empty
    nor everything (the shared tiny model's are one or the other)."""
    model = load_model(tiny_model_dir)
    enliven(model)
    config = {k: v for k, v in model.config.items() if k not in ("weights", "format", "format_version")}
    target = tmp_path_factory.mktemp("cli-model") / "lively"
    save_model(target, dict(config, name="lively-test"), model.state_dict())
    return target


def photo(h: int, w: int, seed: int) -> np.ndarray:
    """HxWx3 uint8 BGR (for cv2.imwrite): skin with a brown disk."""
    rng = np.random.default_rng(seed)
    bgr = np.full((h, w, 3), (140, 160, 205), np.uint8)
    cv2.circle(bgr, (w // 2, h // 2), min(h, w) // 3, (45, 55, 95), -1)
    return np.clip(bgr + rng.normal(0, 4, bgr.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path) -> Path:
    """Two photos (one with an expert mask) and a damaged JPEG."""
    cases = tmp_path / "cases"
    cases.mkdir()
    cv2.imwrite(str(cases / "lesion_a.png"), photo(37, 51, 0))
    mask = np.zeros((37, 51), np.uint8)
    cv2.circle(mask, (25, 18), 12, 255, -1)
    cv2.imwrite(str(cases / "lesion_a_mask.png"), mask)
    cv2.imwrite(str(cases / "lesion_b.jpg"), photo(29, 43, 1))
    return cases


def add_broken(folder: Path) -> Path:
    broken = folder / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" + bytes(range(256)))
    return broken


def analyze(*args) -> int:
    return main(["analyze", *map(str, args), "--device", "cpu"])


def outputs_of(out: Path, case_id: str) -> list[Path]:
    return [out / f"{case_id}{suffix}" for suffix in OUTPUTS]


def test_a_folder_with_a_damaged_photo(folder, model_dir, tmp_path, capsys):
    add_broken(folder)
    out = tmp_path / "out"
    assert analyze(folder, "--out", out, "--model", model_dir) == 1
    err = capsys.readouterr().err
    named = [line for line in err.splitlines() if "broken.jpg" in line]
    assert len(named) == 1 and named[0].startswith("lesionviewer analyze:")
    assert "2 of 3 image(s)" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for case in ("lesion_a", "lesion_b") for p in outputs_of(out, case))


def test_outputs_hold_the_analysis_at_the_photos_size(folder, model_dir, tmp_path):
    out = tmp_path / "out"
    assert analyze(folder, "--out", out, "--model", model_dir) == 0
    analyzer = Analyzer.from_dir(model_dir, device="cpu")
    for case_id, (h, w) in (("lesion_a", (37, 51)), ("lesion_b", (29, 43))):
        consensus = cv2.imread(str(out / f"{case_id}_consensus.png"), cv2.IMREAD_UNCHANGED)
        assert consensus.dtype == np.uint8 and consensus.shape == (h, w)
        assert set(np.unique(consensus)) == {0, 255}
        variance = cv2.imread(str(out / f"{case_id}_variance.png"), cv2.IMREAD_UNCHANGED)
        assert variance.dtype == np.uint16 and variance.shape == (h, w)
        source = next(folder.glob(f"{case_id}.*"))
        expected = analyzer.analyze(load_image(source).rgb, seed=0)
        np.testing.assert_array_equal(consensus == 255, expected.consensus_mask)
        np.testing.assert_array_equal(variance, np.rint(expected.variance * 4 * 65535).astype(np.uint16))
        record = json.loads((out / f"{case_id}_analysis.json").read_text())
        assert record["id"] == case_id and record["source"] == source.name
        assert record["model_id"] == analyzer.model_id and record["model_id"].startswith("lively-test@")
        assert record["ged"] == pytest.approx(expected.ged)
        assert 0 <= record["malignancy_probability"] <= 1
        assert record["skin_tone"]["group"] in ("very light", "light", "intermediate", "tan", "brown", "dark",
                                                "unknown")
        assert record["settings"] == expected.settings
        assert record["seconds"]["total"] > 0 and record["seconds"]["wall"] > 0


def test_a_reference_mask_adds_dice_and_ged(folder, model_dir, tmp_path):
    out = tmp_path / "out"
    assert analyze(folder, "--out", out, "--model", model_dir) == 0
    with_mask = json.loads((out / "lesion_a_analysis.json").read_text())
    without = json.loads((out / "lesion_b_analysis.json").read_text())
    assert "reference" not in without
    reference = with_mask["reference"]
    assert reference["mask"] == "lesion_a_mask.png"
    expert = cv2.imread(str(folder / "lesion_a_mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    consensus = cv2.imread(str(out / "lesion_a_consensus.png"), cv2.IMREAD_GRAYSCALE) > 127
    dice = 2 * (expert & consensus).sum() / (expert.sum() + consensus.sum())
    assert reference["dice"] == pytest.approx(dice, abs=1e-4)
    samples = Analyzer.from_dir(model_dir, device="cpu").analyze(load_image(folder / "lesion_a.png").rgb).sample_masks
    assert reference["ged"] == pytest.approx(ged(samples, expert), abs=1e-4)


def test_masks_are_never_analysed_as_photos(folder, model_dir, tmp_path):
    out = tmp_path / "out"
    (folder / "lesion_b_segmentation.png").write_bytes((folder / "lesion_a_mask.png").read_bytes())
    assert analyze(folder, "--out", out, "--model", model_dir) == 0
    assert sorted(p.name for p in out.glob("*_analysis.json")) == ["lesion_a_analysis.json", "lesion_b_analysis.json"]


def test_results_written_beside_the_photos_are_not_analysed_next_time(folder, model_dir, capsys):
    assert analyze(folder, "--out", folder, "--model", model_dir) == 0
    assert analyze(folder, "--out", folder, "--model", model_dir) == 0
    assert "2 of 2 image(s)" in capsys.readouterr().err.splitlines()[-1]
    assert not list(folder.glob("*_consensus_*"))


def test_settings_from_the_command_line_are_honoured_and_recorded(folder, model_dir, tmp_path):
    out = tmp_path / "out"
    assert analyze(folder / "lesion_b.jpg", "--out", out, "--model", model_dir, "--no-crf", "--samples", "2",
                   "--seed", "5", "--method", "diffseg", "--timesteps", "30", "90", "--threshold", "0.75") == 0
    record = json.loads((out / "lesion_b_analysis.json").read_text())
    assert record["settings"]["crf"] is False
    assert record["settings"]["samples"] == 2 and record["timesteps"] == [30, 90]
    assert record["settings"]["method"] == "diffseg" and record["settings"]["threshold"] == 0.75
    assert record["seed"] == 5
    expected = Analyzer.from_dir(model_dir, device="cpu").analyze(
        load_image(folder / "lesion_b.jpg").rgb,
        AnalysisSettings(samples=2, timestep_range=(30, 90), crf=False, method=Method.DIFFSEG, threshold=0.75),
        seed=5)
    consensus = cv2.imread(str(out / "lesion_b_consensus.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(consensus == 255, expected.consensus_mask)


def test_the_seed_changes_the_samples(folder, model_dir, tmp_path):
    for seed in ("0", "1"):
        assert analyze(folder / "lesion_a.png", "--out", tmp_path / seed, "--model", model_dir, "--seed", seed,
                       "--method", "diffseg", "--no-crf") == 0
    variances = [cv2.imread(str(tmp_path / s / "lesion_a_variance.png"), cv2.IMREAD_UNCHANGED) for s in "01"]
    assert (variances[0] != variances[1]).any()


def test_a_missing_path_is_reported_and_the_rest_still_run(folder, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert analyze(folder / "lesion_a.png", tmp_path / "nope.jpg", "--out", out, "--model", model_dir) == 1
    assert "nope.jpg: no such file or folder" in capsys.readouterr().err
    assert all(p.is_file() for p in outputs_of(out, "lesion_a"))


def test_without_a_model_it_says_none_is_installed(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setattr(checkpoint, "_candidate_dirs", lambda: [tmp_path / "no-models"])
    out = tmp_path / "out"
    assert main(["analyze", str(folder), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "No lesionviewer model is installed" in err and "Traceback" not in err
    assert not out.exists()


def test_a_damaged_model_is_reported_in_one_line(folder, model_dir, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for f in model_dir.iterdir():
        (damaged / f.name).write_bytes(f.read_bytes())
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    assert analyze(folder, "--out", tmp_path / "out", "--model", damaged) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SHA-256" in err[0]


def test_an_unavailable_device_is_reported(folder, model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["analyze", str(folder), "--out", str(tmp_path / "out"), "--model", str(model_dir),
                 "--device", "cuda"]) != 0
    assert "no CUDA GPU is available" in capsys.readouterr().err


@pytest.mark.data
def test_the_shipped_samples_all_get_their_three_outputs(shared_data, tiny_model_dir, tmp_path, capsys):
    samples = shared_data / "samples"
    out = tmp_path / "out"
    assert analyze(samples, "--out", out, "--model", tiny_model_dir) == 0
    photos = sorted(p for p in samples.rglob("*.jpg"))
    assert len(photos) == 25
    for path in photos:
        case_id = path.relative_to(samples).with_suffix("").as_posix()
        for output in outputs_of(out, case_id):
            assert output.is_file(), output
        record = json.loads((out / f"{case_id}_analysis.json").read_text())
        assert "reference" in record  # every sample ships with its expert mask
    assert (out / "ham10000-600x450" / "ISIC_0024311_consensus.png").is_file()
    consensus = cv2.imread(str(out / "ham10000-600x450" / "ISIC_0024311_consensus.png"), cv2.IMREAD_UNCHANGED)
    assert consensus.shape == (450, 600)


# --- one result set per photo, all files or none (issue 12, items 6 and 8) ----------------------

def test_photos_sharing_a_name_in_two_folders_get_a_result_set_each(model_dir, tmp_path, capsys):
    for day, seed in (("day1", 0), ("day2", 1)):
        (tmp_path / day).mkdir()
        cv2.imwrite(str(tmp_path / day / "case.jpg"), photo(31, 41, seed))
    cv2.imwrite(str(tmp_path / "day2" / "case.png"), photo(23, 29, 2))
    out = tmp_path / "out"
    assert analyze(tmp_path / "day1", tmp_path / "day2", "--out", out, "--model", model_dir) == 0
    assert "3 of 3 image(s)" in capsys.readouterr().err
    results = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert results == sorted(f"{case}{suffix}" for case in ("day1/case", "day2/case_jpg", "day2/case_png")
                             for suffix in OUTPUTS)
    records = [json.loads((out / f"{c}_analysis.json").read_text()) for c in ("day1/case", "day2/case_png")]
    assert [r["id"] for r in records] == ["day1/case", "day2/case_png"]
    assert cv2.imread(str(out / "day2" / "case_png_consensus.png")).shape[:2] == (23, 29)


def test_a_name_too_long_for_the_disk_still_gets_its_results(folder, model_dir, tmp_path, capsys):
    from lesionviewer.io.naming import fit_name

    long_name = "x" * 240 + ".jpg"  # 244 characters: "<stem>_consensus.png" would be 254, its temp file more
    (folder / long_name).write_bytes((folder / "lesion_b.jpg").read_bytes())
    out = tmp_path / "out"
    assert analyze(folder, "--out", out, "--model", model_dir) == 0
    written = [p.name for p in out.iterdir() if p.name.startswith("x")]
    assert sorted(written) == sorted(fit_name("x" * 240) + suffix for suffix in OUTPUTS)
    assert all(len(name.encode()) <= 255 for name in written)


def test_a_full_disk_leaves_no_partial_result_sets(folder, model_dir, tmp_path, monkeypatch, capsys):
    import lesionviewer.io.fileset as fileset

    out = tmp_path / "out"
    real_write, calls = fileset._write_all, []

    def full_after_one_set(fd, data):
        calls.append(1)
        if len(calls) > 4:  # the first image's three files, then one more
            raise OSError(28, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(fileset, "_write_all", full_after_one_set)
    assert analyze(folder, "--out", out, "--model", model_dir) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "1 of 2 image(s)" in err
    [line] = [line for line in err.splitlines() if "lesion_b.jpg" in line]
    assert "No space left on device" in line and "nothing was kept" in line
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in outputs_of(out, "lesion_a"))


def test_an_odd_error_in_one_image_does_not_stop_the_batch(folder, model_dir, tmp_path, monkeypatch, capsys):
    import lesionviewer.analyze_cli as analyze_cli

    real_load = analyze_cli.load_image

    def load(path):
        if path.name == "lesion_a.png":
            raise RuntimeError("something no one foresaw")
        return real_load(path)

    monkeypatch.setattr(analyze_cli, "load_image", load)
    assert analyze(folder, "--out", tmp_path / "out", "--model", model_dir) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RuntimeError: something no one foresaw" in err
    assert all(p.is_file() for p in outputs_of(tmp_path / "out", "lesion_b"))
